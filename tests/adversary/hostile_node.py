"""A hostile PeerTap peer: a real libp2p node that attacks the mesh it is admitted to.

    python hostile_node.py --target /ip4/.../tcp/4001/p2p/<relay> --key KEY \
        [--credential FILE] --attack NAME --duration SECONDS

It speaks the real trunk protocol (PeerTap's own Trunk over py-libp2p: Noise, Yamux,
INTRO) and then misbehaves as the attack says. It prints JSON lines on stdout: an
"up" event when the target admitted it, and a final "report" with what it sent.

Attacks:
  stranger         only connect (run it without --credential to be refused, or with
                   --versions naming versions the target does not speak)
  withdraw         forge withdrawals and replacements of every origin it hears of:
                   victim origin with a far-future or current sequence and no tokens,
                   re-sent genuine announcements posing as the origin (distance 0)
  dedup            attract copies of DATA (announce the tokens it heard, signed by its
                   own key), then send forged packets with the real sender and counter
                   and the next predicted counters, and replay the real packets later
  slowread         attract DATA, then stop reading the trunk for good
  control-replay   record CONTROL packets, then replay them: at once, after a flood
                   of self-signed junk, and after they went stale
  control-flood    CONTROL signed by ever new keys and junk CONTROL, as fast as it can
  garbage          random records and malformed packets of every type
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
from pathlib import Path

import trio

from peertap.sidecar import admission, identity, stamps, wire
from peertap.sidecar.announcements import OwnAnnouncer
from peertap.sidecar.private import envelope
from peertap.sidecar.trunk import Trunk, TrunkSettings


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Hostile:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.node = identity.load(args.key)
        creds = ()
        if args.credential:
            creds = (admission.read_file(Path(args.credential)).encode(),)
        lowest, highest = (int(v) for v in args.versions.split("-"))
        self.intro_record = wire.Intro(lowest, highest, credentials=creds).encode()
        self.trunk = Trunk(
            TrunkSettings(
                seed=self.node.seed,
                listen=["/ip4/0.0.0.0/tcp/0"],
                bootstrap=[args.target],
                reconnect_min_s=0.2,
                reconnect_max_s=1.0,
            ),
            self,
        )
        self.target = args.target.rsplit("/p2p/", 1)[1]
        self.up = trio.Event()
        self.stop_reading = False
        self.announces: dict[bytes, wire.Announce] = {}
        self.data: list[bytes] = []
        self.controls: list[bytes] = []
        self.sent: dict[str, int] = {}

    # -- trunk events ----------------------------------------------------------------

    def intro(self) -> bytes:
        return self.intro_record

    def admit(self, peer: str, intro: bytes) -> bool:
        return True

    async def peer_up(self, peer: str) -> None:
        emit("up", peer=peer)
        self.up.set()

    async def peer_down(self, peer: str) -> None:
        emit("down", peer=peer)

    async def records(self, peer: str, records: list[bytes]) -> None:
        if self.stop_reading:
            await trio.sleep_forever()
        for r in records:
            try:
                t = wire.packet_type(r)
            except wire.MalformedPacket:
                continue
            if t == wire.TYPE_ANNOUNCE:
                a = wire.decode_announce(r)
                self.announces[a.origin + a.vlan_id] = a
            elif t == wire.TYPE_DATA:
                self.data.append(r)
                del self.data[:-2000]
                if self.args.attack == "dedup":
                    self._poison(r)
            elif t == wire.TYPE_CONTROL:
                self.controls.append(r)
                del self.controls[:-500]

    # -- sending ---------------------------------------------------------------------

    def send(self, what: str, packets: list[bytes]) -> None:
        if self.trunk.send(self.target, packets):
            self.sent[what] = self.sent.get(what, 0) + len(packets)

    def _poison(self, packet: bytes) -> None:
        """Copies with the genuine sender and counter but other bytes, and predictions."""
        h = wire.decode_data(packet)
        forged = bytearray(packet)
        forged[-1] ^= 0xFF
        out = [bytes(forged)]
        for k in range(1, 20):
            nxt = dataclasses.replace(h, counter=h.counter + k).encode()
            out.append(nxt + os.urandom(len(packet) - wire.DATA_HEADER_LEN))
        self.send("dedup_forged", out)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.trunk.run)
            with trio.move_on_after(self.args.duration):
                await self.up.wait()
                await trio.sleep(1.0)  # let the greeting's announcements arrive
                attack = getattr(self, "attack_" + self.args.attack.replace("-", "_"))
                await attack()
                await trio.sleep_forever()
            emit("report", sent=self.sent, admitted=self.up.is_set(), stats=self.trunk.stats())
            nursery.cancel_scope.cancel()

    # -- attacks ---------------------------------------------------------------------

    async def attack_stranger(self) -> None:
        pass

    async def attack_withdraw(self) -> None:
        while True:
            for a in list(self.announces.values()):
                if a.origin == self.node.public_bytes:
                    continue
                far = dataclasses.replace(a, sequence=2**64 - 1, tokens=(), distance=1)
                now = dataclasses.replace(a, sequence=stamps.now_us(), tokens=(), distance=1)
                mine = dataclasses.replace(a, tokens=(os.urandom(16),), distance=1)
                posing = dataclasses.replace(a, distance=0)
                self.send("forged", [x.encode() for x in (far, now, mine, posing)])
            await trio.sleep(0.2)

    async def _attract(self) -> None:
        """Announce, under our own key, every token we heard others want."""
        while not self.announces:  # the target's greeting may still be on its way
            await trio.sleep(0.1)
        announcer = OwnAnnouncer(self.node, hop_limit=8)
        vlans: dict[bytes, set[bytes]] = {}
        for a in self.announces.values():
            vlans.setdefault(a.vlan_id, set()).update(a.tokens)
        self.send(
            "attract", [announcer.make(v, tuple(sorted(t))).encode() for v, t in vlans.items()]
        )

    async def attack_dedup(self) -> None:
        while True:
            await self._attract()
            await trio.sleep(2.0)
            self.send("replayed", self.data[-200:])

    async def attack_slowread(self) -> None:
        await self._attract()
        await trio.sleep(1.0)  # the target learns our routes
        self.stop_reading = True
        emit("stopped_reading")

    async def attack_control_replay(self) -> None:
        await trio.sleep(self.args.record_s)
        captured = list(self.controls)
        emit("captured", control=len(captured))
        self.send("replayed_now", captured)
        junk = identity.generate
        for _ in range(20):
            self.send("junk", [self._signed_junk(junk()) for _ in range(100)])
            await trio.sleep(0.1)
        self.send("replayed_after_flush", captured)
        await trio.sleep(self.args.stale_after_s)
        self.send("replayed_stale", captured)

    def _signed_junk(self, key: identity.Identity) -> bytes:
        vlan = os.urandom(16)
        if self.controls:
            vlan = wire.decode_control(random.choice(self.controls)).vlan_id
        return envelope.sign(
            key,
            hop_limit=8,
            timestamp=stamps.now_us(),
            vlan_id=vlan,
            kind=1,
            body=os.urandom(64),
        ).encode()

    async def attack_control_flood(self) -> None:
        keys = [identity.generate() for _ in range(50)]
        while True:
            batch = [self._signed_junk(random.choice(keys)) for _ in range(50)]
            batch += [bytes([wire.VERSION, 3, 8, 0]) + os.urandom(200) for _ in range(50)]
            self.send("control_junk", batch)
            keys[random.randrange(len(keys))] = identity.generate()
            await trio.sleep(0)

    async def attack_garbage(self) -> None:
        while True:
            batch = [os.urandom(random.randint(1, 300)) for _ in range(50)]
            for t in (1, 2, 3, 4):
                batch.append(bytes([wire.VERSION, t, 8, 0]) + os.urandom(random.randint(0, 120)))
            self.send("garbage", batch)
            await trio.sleep(0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--target", required=True, help="multiaddr of the node to attack")
    p.add_argument("--key", required=True, help="this peer's node key file")
    p.add_argument("--credential", help="node credential file to present")
    p.add_argument("--attack", required=True)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument(
        "--versions", default=f"{wire.VERSION}-{wire.VERSION}", help="INTRO versions LOW-HIGH"
    )
    p.add_argument("--record-s", type=float, default=4.0, help="control-replay: recording")
    p.add_argument("--stale-after-s", type=float, default=8.0, help="control-replay: wait")
    args = p.parse_args()
    trio.run(Hostile(args).run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
