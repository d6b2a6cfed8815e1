"""The private VLAN simulator (`peertap sim private`, sim_cli.py): many members in one process.

N members, each a real PrivateVlan (MLS group code, lifecycle rules, CONTROL bodies,
PARTs, HELLO answers), run on trio with a virtual clock (trio.testing.MockClock: time
jumps ahead whenever every member waits), over an in-memory mesh: member i hangs off
relay i mod R, the relays are fully meshed, and each hop takes `hop_latency_s`. Every
CONTROL message is signed with its member's node key and encoded as the wire packet;
the packet is decoded and its signature verified once (as the first node to receive
it would), and every member it reaches takes it through PrivateVlan.on_control, which
is what a node does after its checks. Relays answer a joiner's HELLO from their
HelloCache, as a relay node does, and learn routes (routes.py) from the packets they
carry: a DIRECTED message (a Welcome) goes only toward its destinations when a relay
knows the way, as it does in a relay node.

Figures: members converged, distinct MLS-IDs, time to converge (virtual seconds:
timers and hops, not CPU), largest CONTROL packet and message, control bytes per member
per minute in a steady window (received: every packet that reaches a member; sent:
its own packets), and with churn (members stopping and new ones starting, alternately)
how long each join and removal took. MAC probes are off unless asked for: they cost
one MLS decryption per member per probe, which one process pays for every member.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio
import trio.testing

from .. import ids, wire
from ..config import VlanConfig
from ..counters import Counters
from ..crypto.mls_keys import MlsKeyProvider
from ..identity import Identity, generate
from . import authority, envelope
from . import messages as m
from .hello_cache import HelloCache
from .lifecycle import PrivateSettings
from .macprobe import MacClaim
from .routes import Routes
from .vlan import PrivateVlan

LABEL = "sim"
POLL_S = 0.25
HOP_LIMIT = 8


def default_settings() -> PrivateSettings:
    """The settings of a private VLAN configured with nothing but its defaults."""
    v = VlanConfig(label=LABEL, creator="00" * 32, security="mls", credential="x")
    return PrivateSettings(
        rekey_interval_s=v.rekey_interval_s,
        member_timeout_s=v.member_timeout_s,
        epoch_grace_s=v.epoch_grace_s,
    )


@dataclass
class SimMember:
    name: str
    node: Identity
    pv: PrivateVlan
    counters: Counters
    relay: int
    started: float
    part: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    @property
    def running(self) -> bool:
        return not self.scope.cancel_called


@dataclass
class Report:
    members: int
    relays: int
    converged: int
    distinct_mls_ids: int
    time_to_converge_s: float | None
    largest_packet: int
    largest_message: int
    rx_bytes_per_member_per_min: float
    tx_bytes_per_member_per_min: float
    steady_window_s: float
    churn_rx_bytes_per_member_per_min: float | None
    joins_s: list[float]
    removals_s: list[float]
    wall_s: float
    drops: dict[str, int]

    def lines(self) -> list[str]:
        conv = (
            "did not converge"
            if self.time_to_converge_s is None
            else f"{self.time_to_converge_s:.1f} s"
        )
        out = [
            f"members: {self.members}, relays: {self.relays}",
            f"members converged (in the largest group): {self.converged}/{self.members}",
            f"distinct MLS-IDs: {self.distinct_mls_ids}",
            f"time to converge (virtual): {conv}",
            f"largest CONTROL packet: {self.largest_packet} B, "
            f"largest CONTROL message: {self.largest_message} B",
            f"control bytes per member per minute ({self.steady_window_s:.0f} s steady window): "
            f"received {self.rx_bytes_per_member_per_min:,.0f}, "
            f"sent {self.tx_bytes_per_member_per_min:,.0f}",
        ]
        if self.churn_rx_bytes_per_member_per_min is not None:
            out.append(
                "control bytes per member per minute while churning: received "
                f"{self.churn_rx_bytes_per_member_per_min:,.0f}"
            )
        for what, times in (("joins", self.joins_s), ("removals", self.removals_s)):
            if times:
                out.append(
                    f"{what}: {len(times)}, took median {statistics.median(times):.1f} s, "
                    f"max {max(times):.1f} s: " + ", ".join(f"{t:.1f}" for t in times)
                )
        if self.drops:
            out.append("drops: " + ", ".join(f"{k} {v}" for k, v in sorted(self.drops.items())))
        out.append(f"wall time: {self.wall_s:.1f} s")
        return out


class Mesh:
    """Members on R fully meshed relays; delivers signed CONTROL packets after their hops."""

    def __init__(
        self,
        *,
        relays: int,
        settings: PrivateSettings,
        hop_latency_s: float,
        mac_probes: bool,
        seed: int,
        relay_answers: bool = True,
    ) -> None:
        self.relays = max(1, relays)
        self.relay_answers = relay_answers
        self.settings = settings
        self.hop_latency_s = hop_latency_s
        self.mac_probes = mac_probes
        self.rng = random.Random(seed)
        self.authority = generate()
        self.vlan_id = ids.vlan_id(self.authority.public_bytes, LABEL)
        self.members: dict[str, SimMember] = {}
        self.caches = [
            HelloCache(max_age_s=30.0, clock=trio.current_time) for _ in range(self.relays)
        ]
        self.routes = [Routes(clock=trio.current_time) for _ in range(self.relays)]
        self.directed_routed = 0
        self.directed_flooded = 0
        self.largest_packet = 0
        self.largest_message = 0
        self._stamp = 0
        self._queue: list[tuple[float, int, wire.Control, int, list[SimMember]]] = []
        self._seq = 0
        self._ready = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._count = 0
        self._parts: dict[bytes, int] = {}
        self._credentials: dict[bytes, authority.MemberCredential] = {}
        # Refuse a member's batch of messages (its emit fails), e.g. to test atomic commits.
        self.refuse: Callable[[SimMember, Sequence[tuple[int, bytes]]], bool] = lambda x, msgs: (
            False
        )

    def start(self, nursery: trio.Nursery) -> None:
        """Run the network in `nursery`; members added later run there too."""
        self._nursery = nursery
        nursery.start_soon(self.deliver)

    # ---- members ------------------------------------------------------------------------

    def _credential(self, node: Identity, name: str) -> bytes:
        now = dt.datetime.now(dt.UTC)
        return authority.issue(
            authority=self.authority,
            member_identity=f"{LABEL}/{name}",
            member_key=node.public_bytes,
            vlan_id=self.vlan_id,
            issued=now - dt.timedelta(hours=1),
            expires=now + dt.timedelta(days=1),
        ).encode()

    def add(self) -> SimMember:
        assert self._nursery is not None
        name = f"m{self._count}"
        relay = self._count % self.relays
        self._count += 1
        node = generate()
        counters = Counters()
        keys = MlsKeyProvider(
            vlan_id=self.vlan_id, grace_s=self.settings.epoch_grace_s, clock=trio.current_time
        )
        claim = None
        if self.mac_probes:
            mac = ids.member_mac(node.public_bytes, self.vlan_id, bytes(16))
            claim = MacClaim(public=node.public_bytes, vlan_id=self.vlan_id, mac=mac, derived=True)
        pv = PrivateVlan(
            vlan_id=self.vlan_id,
            creator=self.authority.public_bytes,
            node=node,
            credential=self._credential(node, name),
            settings=self.settings,
            keys=keys,
            emit=functools.partial(self._emit, name),
            connected=lambda: True,
            on_epoch=lambda: None,
            counters=counters,
            clock=trio.current_time,
            mac=claim,
            # Members of one VLAN share verified credentials: the process pays for each
            # credential's signature once, not once per member.
            credential_cache=self._credentials,
        )
        member = SimMember(name, node, pv, counters, relay, trio.current_time())
        self.members[name] = member
        self._nursery.start_soon(self._run_member, member)
        return member

    async def _run_member(self, member: SimMember) -> None:
        with member.scope:
            await member.pv.run()

    def stop(self, member: SimMember) -> None:
        member.scope.cancel()

    def running(self) -> list[SimMember]:
        return [x for x in self.members.values() if x.running]

    # ---- the network --------------------------------------------------------------------

    async def _emit(self, name: str, vlan_id: bytes, messages: Sequence[tuple[int, bytes]]) -> bool:
        sender = self.members[name]
        if not sender.running or self.refuse(sender, messages):
            return False
        for kind, body in messages:
            self._stamp += 1
            packet = envelope.sign(
                sender.node,
                hop_limit=HOP_LIMIT,
                timestamp=self._stamp,
                vlan_id=vlan_id,
                kind=kind,
                body=body,
            ).encode()
            msg = wire.decode_control(packet)
            if not envelope.verify(msg):
                raise AssertionError("a member's CONTROL packet does not verify")
            self._account(msg, len(packet))
            sender.tx_bytes += len(packet)
            near, far = self._route(sender, msg)
            self._schedule(2, msg, len(packet), near)
            self._schedule(3, msg, len(packet), far)
            if kind == m.HELLO:
                self._relays_hear(sender, msg, packet)
        return True

    def _route(
        self, sender: SimMember, msg: wire.Control
    ) -> tuple[list[SimMember], list[SimMember]]:
        """The members a packet reaches through the sender's relay (near) and through the
        other relays (far): every member of the sender's partition, or for a DIRECTED
        message those the relays' learned routes lead to (routes.py, as in Mvlan)."""
        src = sender.relay
        on: dict[int, list[SimMember]] = {}
        for x in self.members.values():
            if x.running and x.part == sender.part:
                on.setdefault(x.relay, []).append(x)
        members = self.members

        def member(peer: str) -> list[SimMember]:
            return [members[peer[2:]]] if peer.startswith("m:") else []

        relays = [f"r:{j}" for j in range(self.relays)]

        def hops(relay: int, came_from: str) -> list[str]:
            self.routes[relay].learned(msg.signer, came_from)
            peers = [f"m:{x.name}" for x in on.get(relay, [])]
            peers += [r for r in relays if r != f"r:{relay}"]
            out, routed = self.routes[relay].next_hops(
                msg.kind, msg.body, peers, came_from=came_from
            )
            if msg.kind == m.DIRECTED:
                if routed:
                    self.directed_routed += 1
                else:
                    self.directed_flooded += 1
            return out

        first = hops(src, f"m:{sender.name}")
        near = [x for p in first for x in member(p)]
        far = [
            x
            for j in range(self.relays)
            if f"r:{j}" in first
            for p in hops(j, f"r:{src}")
            for x in member(p)
        ]
        return near, far

    def _account(self, msg: wire.Control, size: int) -> None:
        self.largest_packet = max(self.largest_packet, size)
        whole = len(msg.body)
        kind, body = msg.kind, msg.body
        if kind == m.DIRECTED:
            directed = m.Directed.decode(body)
            kind, body = directed.kind, directed.body
            whole = len(body)
        if kind == m.PART:
            part = m.Part.decode(body)
            if len(self._parts) > 1024:
                self._parts.clear()
            whole = self._parts[part.message_id] = self._parts.get(part.message_id, 0) + len(
                part.data
            )
        self.largest_message = max(self.largest_message, whole)

    def _relays_hear(self, sender: SimMember, msg: wire.Control, packet: bytes) -> None:
        """Every relay floods the HELLO and caches it; the sender's relay answers a joiner."""
        for index, cache in enumerate(self.caches):
            answers = cache.heard(sender.name, msg, packet)
            if index == sender.relay and answers and self.relay_answers:
                for raw in answers:
                    self._schedule(1, wire.decode_control(raw), len(raw), [sender])

    def _schedule(self, hops: int, msg: wire.Control, size: int, to: list[SimMember]) -> None:
        if not to:
            return
        self._seq += 1
        at = trio.current_time() + hops * self.hop_latency_s
        heapq.heappush(self._queue, (at, self._seq, msg, size, to))
        self._ready.set()

    async def deliver(self) -> None:
        """The network's task: hand each packet to its receivers when its hops are done."""
        while True:
            if not self._queue:
                await self._ready.wait()
                self._ready = trio.Event()
                continue
            at = self._queue[0][0]
            now = trio.current_time()
            if at > now:
                with trio.move_on_after(at - now):
                    await self._ready.wait()
                self._ready = trio.Event()
                continue
            _, _, msg, size, to = heapq.heappop(self._queue)
            for x in to:
                if x.running:
                    x.rx_bytes += size
                    x.pv.on_control(msg)

    # ---- views --------------------------------------------------------------------------

    def views(self) -> dict[tuple[bytes, int, bytes, int] | None, int]:
        out: dict[tuple[bytes, int, bytes, int] | None, int] = {}
        for x in self.running():
            v = x.pv.view()
            out[v] = out.get(v, 0) + 1
        return out

    def heal(self) -> None:
        """Connectivity returns: one partition again, and every member says HELLO at once,
        as a node does when a trunk comes up (Mvlan)."""
        for x in self.running():
            x.part = 0
            x.pv.hello_now()

    async def until_converged(self, timeout: float) -> float | None:
        """Virtual seconds until every running member is in one group of all of them."""
        start = trio.current_time()
        while trio.current_time() - start < timeout:
            if self.converged():
                return trio.current_time() - start
            await trio.sleep(POLL_S)
        return None

    def converged(self) -> bool:
        views = self.views()
        if len(views) != 1:
            return False
        ((view, count),) = views.items()
        return view is not None and view[3] == count


class Sim:
    def __init__(
        self,
        *,
        members: int,
        relays: int = 1,
        churn_per_min: float = 0.0,
        churn_s: float = 180.0,
        steady_s: float | None = None,
        settings: PrivateSettings | None = None,
        hop_latency_s: float = 0.002,
        mac_probes: bool = False,
        converge_timeout_s: float = 600.0,
        seed: int = 1,
    ) -> None:
        self.n = members
        self.churn_per_min = churn_per_min
        self.churn_s = churn_s
        self.settings = settings or default_settings()
        self.steady_s = steady_s or max(60.0, 2 * self.settings.hello_interval_for(members))
        self.converge_timeout_s = converge_timeout_s
        self.mesh = Mesh(
            relays=relays,
            settings=self.settings,
            hop_latency_s=hop_latency_s,
            mac_probes=mac_probes,
            seed=seed,
        )

    def run(self) -> Report:
        wall = time.monotonic()
        report: list[Report] = []

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                self.mesh.start(nursery)
                report.append(await self._scenario(wall))
                nursery.cancel_scope.cancel()

        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        return report[0]

    async def _scenario(self, wall: float) -> Report:
        mesh = self.mesh
        for _ in range(self.n):
            mesh.add()
        took = await mesh.until_converged(self.converge_timeout_s)
        joins: list[float] = []
        removals: list[float] = []
        rx0, tx0 = self._bytes()
        window_start = trio.current_time()
        await trio.sleep(self.steady_s)
        rx1, tx1 = self._bytes()
        minutes = (trio.current_time() - window_start) / 60
        n = len(mesh.running())
        churn_rx = None
        if self.churn_per_min > 0:
            rx2 = self._bytes()[0]
            start = trio.current_time()
            await self._churn(joins, removals)
            churn_rx = (self._bytes()[0] - rx2) / n / ((trio.current_time() - start) / 60)
        views = mesh.views()
        groups = [c for v, c in views.items() if v is not None]
        drops: dict[str, int] = {}
        for x in mesh.members.values():
            for k, v in x.counters.drops.items():
                drops[k] = drops.get(k, 0) + v
        return Report(
            members=len(mesh.running()),
            relays=mesh.relays,
            converged=max(groups, default=0),
            distinct_mls_ids=len({v[2] for v in views if v is not None}),
            time_to_converge_s=took,
            largest_packet=mesh.largest_packet,
            largest_message=mesh.largest_message,
            rx_bytes_per_member_per_min=(rx1 - rx0) / n / minutes,
            tx_bytes_per_member_per_min=(tx1 - tx0) / n / minutes,
            steady_window_s=self.steady_s,
            churn_rx_bytes_per_member_per_min=churn_rx,
            joins_s=joins,
            removals_s=removals,
            wall_s=time.monotonic() - wall,
            drops=drops,
        )

    def _bytes(self) -> tuple[int, int]:
        members = self.mesh.members.values()
        return sum(x.rx_bytes for x in members), sum(x.tx_bytes for x in members)

    async def _churn(self, joins: list[float], removals: list[float]) -> None:
        """Alternately stop a random member and start a new one, `churn_per_min` events a
        minute for `churn_s`; then wait (bounded) for every join and removal to finish."""
        mesh = self.mesh
        gap = 60.0 / self.churn_per_min
        joining: list[tuple[SimMember, float]] = []
        leaving: list[tuple[bytes, float]] = []
        end = trio.current_time() + self.churn_s
        settle = end + 3 * self.settings.member_timeout_for(self.n) + 30
        leave = True
        next_event = trio.current_time()
        while trio.current_time() < settle and (trio.current_time() < end or joining or leaving):
            now = trio.current_time()
            if now >= next_event and now < end:
                running = mesh.running()
                if leave and len(running) > 2:
                    gone = mesh.rng.choice(running)
                    mesh.stop(gone)
                    leaving.append((gone.node.public_bytes, now))
                else:
                    joining.append((mesh.add(), now))
                leave = not leave
                next_event = now + gap
            majority = max(mesh.views().items(), key=lambda kv: kv[1])[0]
            for member, at in list(joining):
                v = member.pv.view()
                if v is not None and majority is not None and v == majority:
                    joins.append(now - at)
                    joining.remove((member, at))
            for key, at in list(leaving):
                if not any(x.pv.has_member(key) for x in mesh.running()[:3]):
                    removals.append(now - at)
                    leaving.remove((key, at))
            await trio.sleep(POLL_S)
