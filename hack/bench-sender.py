"""Private VLAN member binding benchmark (`make bench-sender`).

1. Per-frame cost of sender-bound frames (one process, the real port code): a member's
   VlanPort seals units and another member's VlanPort opens them and writes them to a
   sink, once with the epoch bound to the roster (tags, MAC check) and once unbound
   (the group key only, as before), in the same run, for frames of 64, 1500 and
   65000 bytes; unicast (one tag) and broadcast (a tag per other member) in groups of
   3, 10 and 100. Printed: microseconds per frame (seal + open) and the ratio.

2. Revocation (netns lab, needs root; skip with --no-lab): a star of N members (default
   5) around one relay with default timings; once they form one group, the authority's
   list revoking the last member is written to the first member's `revocations` file.
   Printed: seconds from writing the file until
     spread     every other member adopted the list (counter revocation_lists_adopted)
     removed    every other member shows one group without the revoked member
     cut off    the revoked member's pings to m1 stop being answered
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peertap.sidecar import identity, ids
from peertap.sidecar.counters import Counters
from peertap.sidecar.crypto import senders
from peertap.sidecar.crypto.mls_keys import MlsKeyProvider
from peertap.sidecar.port import PortInfo, VlanPort
from peertap.sidecar.tap.device import ZERO_VNET_HDR

VID = bytes(range(16))
FRAME_KEY = bytes(range(32, 64))


class Sink:
    def __init__(self) -> None:
        self.n = 0

    def write(self, unit: bytes) -> bool:
        self.n += 1
        return True


def member(
    node: identity.Identity, leaf: int, roster: dict[int, bytes], bound: bool
) -> tuple[VlanPort, Sink]:
    keys = MlsKeyProvider(
        vlan_id=VID,
        grace_s=10,
        pairing=senders.Pairing(node.seed, node.public_bytes) if bound else None,
    )
    keys.install(epoch=1, frame_key=FRAME_KEY, own_leaf=leaf, members=roster)
    sink = Sink()
    mac = ids.member_mac(node.public_bytes, VID, bytes(16))
    port = VlanPort(
        info=PortInfo("bench", VID, "pt-bench", mac, "mls"),
        sink=sink,
        keys=keys,
        hop_limit=8,
        counters=Counters(),
    )
    return port, sink


def per_frame_us(size: int, members: int, broadcast: bool, bound: bool, n: int) -> float:
    nodes = [identity.generate() for _ in range(members)]
    roster = {i: x.public_bytes for i, x in enumerate(nodes)}
    a, _ = member(nodes[0], 0, roster, bound)
    b, sink = member(nodes[1], 1, roster, bound)
    dst = b"\xff" * 6 if broadcast else b.info.mac
    unit = ZERO_VNET_HDR + dst + a.info.mac + struct.pack(">H", 0x0800) + os.urandom(size - 14)
    from peertap.sidecar import wire

    start = time.perf_counter()
    for _ in range(n):
        sealed, _ = a.outgoing([unit], reachable=lambda v, t: True)
        for _, packet in sealed:
            b.deliver(packet, wire.decode_data(packet))
    elapsed = time.perf_counter() - start
    if sink.n != n:
        raise SystemExit(f"only {sink.n} of {n} frames arrived: {dict(b.counters.drops)}")
    return elapsed / n * 1e6


def bench_frames(repeat: int) -> None:
    print("per-frame cost, seal + open (microseconds; median of runs, same process)")
    print(f"{'frame':>7} {'members':>7} {'to':>9} {'unbound':>9} {'bound':>9} {'ratio':>6}")
    for size in (64, 1500, 65000):
        n = 3000 if size < 10000 else 600
        for members in (3, 10, 100):
            for broadcast in (False, True):
                un, bo = [], []
                for _ in range(repeat):
                    un.append(per_frame_us(size, members, broadcast, False, n))
                    bo.append(per_frame_us(size, members, broadcast, True, n))
                u, b = sorted(un)[len(un) // 2], sorted(bo)[len(bo) // 2]
                to = "broadcast" if broadcast else "unicast"
                print(f"{size:>7} {members:>7} {to:>9} {u:>9.1f} {b:>9.1f} {b / u:>6.2f}")


# ---- 2. revocation in a netns lab ----------------------------------------------------------


def bench_revocation(members: int) -> None:
    from peertap.sidecar.lab import Lab, topology
    from peertap.sidecar.lab.nodes import CREATOR_KEY
    from peertap.sidecar.private import authority, revocation

    state = Path(tempfile.mkdtemp(prefix="pt-bench-revoke-"))
    lab = Lab.up(topology("star", members=members), state_dir=state, start_nodes=False)
    try:
        creator = identity.load(state / CREATOR_KEY)
        pods = [p for p in lab.pods if p.startswith("m")]
        now = dt.datetime.now(dt.UTC)
        for pod in pods:
            cfg_path = lab.config_path(pod)
            cfg = json.loads(cfg_path.read_text())
            vlan = cfg["vlans"][0]
            key = identity.load(lab.key_path(pod)).public_bytes
            cred = authority.issue(
                authority=creator,
                member_identity=f"bench/{pod}",
                member_key=key,
                vlan_id=ids.vlan_id(creator.public_bytes, vlan["label"]),
                issued=now - dt.timedelta(minutes=5),
                expires=now + dt.timedelta(hours=2),
            )
            (cfg_path.parent / "lab.cred").write_bytes(cred.encode())
            vlan.update(security="mls", credential="lab.cred", revocations="lab.revoked")
            cfg_path.write_text(json.dumps(cfg))
        for pod in lab.plan.node_pods():
            lab.start_node(pod)
        lab.wait_ready(timeout=60)
        revoked, rest = pods[-1], pods[:-1]

        def view(pod: str) -> dict[str, Any]:
            v: dict[str, Any] = lab.status(pod)["vlans"][0]
            return v

        def group_of(pool: list[str]) -> bool:
            views = [view(p) for p in pool]
            return all(v["mls_state"] == "member" and v["members"] == len(pool) for v in views)

        try:
            wait("one group", lambda: group_of(pods), 120)
        except SystemExit:
            for pod in pods:
                v = view(pod)
                print(pod, v.get("mls_state"), v.get("members"), v.get("epoch"), file=sys.stderr)
            raise
        pinger = lab.spawn(
            revoked,
            ["ping", "-D", "-i", "0.1", "-W", "1", lab.overlay_address(rest[0])],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(2)
        listed = revocation.sign_revocation_list(
            creator, "lab", [identity.load(lab.key_path(revoked)).public_bytes], 1
        )
        t0 = time.time()
        (lab.config_path(rest[0]).parent / "lab.revoked").write_text(revocation.to_text(listed))

        def adopted(pod: str) -> bool:
            events = lab.status(pod)["counters"]["events"]
            return bool(events.get("revocation_lists_adopted", 0))

        spread = wait("spread", lambda: all(adopted(p) for p in rest), 60) - t0
        removed = wait("removed", lambda: group_of(rest), 60) - t0
        time.sleep(3)
        pinger.terminate()
        out, _ = pinger.communicate(timeout=10)
        replies = [float(x[1 : x.index("]")]) for x in out.splitlines() if x.startswith("[")]
        last = max((r for r in replies), default=t0)
        print(f"revocation, {members} members, default timings (member_timeout_s 30)")
        print(f"  spread   {spread:6.2f} s  (every other member has the list)")
        print(f"  removed  {removed:6.2f} s  (one group without the revoked member)")
        print(f"  cut off  {max(last - t0, 0):6.2f} s  (last echo reply the revoked member got)")
    finally:
        lab.down()


def wait(what: str, check: Callable[[], bool], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.time()
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--members", type=int, default=5)
    p.add_argument("--no-lab", action="store_true", help="skip the revocation lab")
    args = p.parse_args()
    bench_frames(args.repeat)
    if not args.no_lab:
        if os.geteuid() != 0:
            print("revocation: skipped (needs root)", file=sys.stderr)
            return
        bench_revocation(args.members)


if __name__ == "__main__":
    main()
