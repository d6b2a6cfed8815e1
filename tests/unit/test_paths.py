"""Path scoring: PathScores ranks, the route table choosing by them, and two real
PathMonitors probing each other (each one's send delivers to the other)."""

from __future__ import annotations

import pytest

from peertap.sidecar import wire
from peertap.sidecar.announcements import digest_of
from peertap.sidecar.counters import Counters
from peertap.sidecar.switch import scores as sc
from peertap.sidecar.switch.probes import LOST_AFTER_S, REPLIES_PER_S, PathMonitor
from peertap.sidecar.switch.routes import RouteTable
from peertap.sidecar.switch.scores import PathScores

VLAN = b"v" * 16
TOKEN = b"t" * 16


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def scored(clock: Clock, **rtts_ms: float) -> PathScores:
    s = PathScores(clock=clock)
    for peer, ms in rtts_ms.items():
        for _ in range(10):
            s.rtt(peer, ms / 1000)
    return s


def test_faster_paths_rank_lower_and_paths_of_about_equal_latency_tie() -> None:
    clock = Clock()
    s = scored(clock, fast=0.3, alike=0.35, slow=20.0)
    assert s.rank("fast") == s.rank("alike") < s.rank("slow")
    assert s.rank("unknown") == sc.UNKNOWN_RANK


def test_loss_saturation_and_silence_raise_a_rank_at_once_and_it_falls_only_after_a_hold() -> None:
    clock = Clock()
    s = scored(clock, a=0.4, b=0.4)
    base = s.rank("a")
    s.lost("a", 5)
    assert s.rank("a") > base
    assert s.rank("b") == base
    s.load("b", queued_bytes=3_000_000, limit_bytes=4_000_000)
    assert s.rank("b") == base + sc.SATURATED_RANK
    s.load("b", queued_bytes=0, limit_bytes=4_000_000)
    assert s.rank("b") == base + sc.SATURATED_RANK  # held after the saturation
    clock.t += sc.HOLD_S + 1
    assert s.rank("b") == base
    s.probe_sent("b")
    clock.t += sc.STALL_S / 2
    assert not s.stalled("b")
    clock.t += sc.STALL_S
    assert s.stalled("b") and s.rank("b") >= sc.STALLED_RANK
    s.rtt("b", 0.0004)
    assert not s.stalled("b") and s.rank("b") >= sc.STALLED_RANK
    clock.t += sc.HOLD_S + 1
    assert s.rank("b") == base


def test_ranks_keep_their_bucket_near_an_edge_instead_of_flapping() -> None:
    clock = Clock()
    s = scored(clock, a=1.4)
    first = s.rank("a")
    for ms in (1.55, 1.45, 1.6, 1.4):
        for _ in range(3):
            s.rtt("a", ms / 1000)
        assert s.rank("a") == first


def learn(r: RouteTable, peer: str, distance: int) -> None:
    ann = wire.Announce(8, b"o" * 32, VLAN, 1, distance, (TOKEN,))
    r.learn(peer, ann, digest=digest_of(ann))


def test_routes_prefer_the_best_ranked_neighbour_and_keep_a_stalled_one_as_last_resort() -> None:
    ranks = {"r1": 0, "r2": 0}
    r = RouteTable(ttl_s=30, rank=ranks.__getitem__)
    learn(r, "r1", 1)
    learn(r, "r2", 1)
    assert r.next_hops(VLAN, TOKEN) == ("r1",)  # a tie keeps the path learned first
    ranks["r1"] = sc.STALLED_RANK
    r.rescore()
    assert r.next_hops(VLAN, TOKEN) == ("r2",)
    r.drop_peer("r2")
    assert r.next_hops(VLAN, TOKEN) == ("r1",)  # ranks order paths, never remove one


def test_a_shorter_path_wins_unless_it_is_much_worse() -> None:
    ranks = {"near": 0, "far": 0}
    r = RouteTable(ttl_s=30, rank=ranks.__getitem__)
    learn(r, "far", 3)
    learn(r, "near", 1)
    assert r.next_hops(VLAN, TOKEN) == ("near",)
    ranks["near"] = 4  # e.g. a saturated trunk (3) held down (1)
    r.rescore()
    assert r.next_hops(VLAN, TOKEN) == ("far",)


class Pair:
    """Two PathMonitors whose sends deliver straight into each other."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.inflight: list[tuple[str, bytes]] = []
        self.changes = 0
        self.a = self._monitor("A", "B")
        self.b = self._monitor("B", "A")

    def _monitor(self, me: str, other: str) -> PathMonitor:
        def send(peer: str, records: list[bytes]) -> bool:
            assert peer == other
            self.inflight += [(other, rec) for rec in records]
            return True

        def changed() -> None:
            self.changes += 1

        return PathMonitor(
            scores=PathScores(clock=self.clock),
            peers=lambda: [other],
            send=send,
            load=lambda: {other: {"queued_bytes": 0}},
            queue_limit=1 << 22,
            on_change=changed,
            counters=Counters(),
            interval_s=0.1,
            clock=self.clock,
        )

    def deliver(self, *, delay: float = 0.0) -> None:
        self.clock.t += delay
        while self.inflight:
            to, rec = self.inflight.pop(0)
            (self.a if to == "A" else self.b).on_probe("B" if to == "A" else "A", rec)


def test_two_monitors_measure_the_round_trip_between_them() -> None:
    pair = Pair()
    for _ in range(5):
        pair.a.tick()
        pair.deliver(delay=0.002)
    row = pair.a.status()["B"]
    assert row["samples"] == 5 and row["rtt_ms"] == pytest.approx(2.0)
    assert not row["stalled"] and pair.changes >= 1
    assert pair.a.counters.events["probe_rtt"] == 5


def test_unanswered_probes_stall_the_path_then_count_as_lost() -> None:
    pair = Pair()
    pair.a.tick()
    pair.deliver(delay=0.001)
    pair.inflight.clear()
    for _ in range(int(LOST_AFTER_S / 0.1) + 5):
        pair.a.tick()
        pair.inflight.clear()  # a frozen neighbour: nothing comes back
        pair.clock.t += 0.1
    row = pair.a.status()["B"]
    assert row["stalled"] and row["lost"] > 0 and pair.a.rank("B") >= sc.STALLED_RANK


def test_a_neighbour_cannot_answer_a_probe_it_did_not_receive() -> None:
    pair = Pair()
    pair.a.tick()
    sent = [rec for _, rec in pair.inflight]
    pair.inflight.clear()
    probe = wire.decode_probe(sent[0])
    # Guessing ids (even the neighbour of the one sent) earns nothing: counted, ignored.
    for guess in (probe.probe_id + 1, probe.probe_id - 1, 0):
        pair.a.on_probe("B", wire.Probe(guess, probe.echo, reply=True).encode())
    assert pair.a.counters.drops["probe_unknown"] == 3
    assert pair.a.status()["B"]["samples"] == 0
    # A reply to the real probe counts once; its replay does not count again.
    answer = probe.answer().encode()
    pair.a.on_probe("B", answer)
    pair.a.on_probe("B", answer)
    assert pair.a.status()["B"]["samples"] == 1
    assert pair.a.counters.drops["probe_unknown"] == 4


def test_a_probe_flood_draws_a_bounded_number_of_replies() -> None:
    pair = Pair()
    flood = wire.Probe(1, 2).encode()
    for _ in range(10_000):
        pair.b.on_probe("A", flood)
    replies = len(pair.inflight)
    assert replies <= 2 * REPLIES_PER_S + 1
    assert pair.b.counters.drops["probe_rate"] == 10_000 - replies


@pytest.mark.parametrize(
    "packet",
    [
        wire.Probe(1, 2).encode()[:-1],
        wire.Probe(1, 2).encode() + b"x",
        bytes([wire.VERSION, 5, 1, 0x02]) + bytes(16),  # unknown flag
        bytes([wire.VERSION, 5, 0, 0]) + bytes(16),  # hop limit 0
    ],
)
def test_malformed_probes_raise_malformed_packet(packet: bytes) -> None:
    pair = Pair()
    with pytest.raises(wire.MalformedPacket):
        pair.b.on_probe("A", packet)
    assert pair.inflight == []
