"""Path scores from the datagram path's own probes: a PathMonitor reading real
PathStats (datagram/path.py, driven through the calls the datagram channel makes)
sends no stream PROBE to a peer whose datagram path is up, ranks it by that path's
RTT, loss and refused sends, finds a stall from unanswered rounds, and falls back to
stream PROBEs (keeping the stall) once the path goes down."""

from __future__ import annotations

from typing import Any

import pytest

from peertap.sidecar import wire
from peertap.sidecar.announcements import digest_of
from peertap.sidecar.counters import Counters
from peertap.sidecar.datagram.path import DOWN_AFTER_S, PROBE_INTERVAL_S, PathStats
from peertap.sidecar.switch import scores as sc
from peertap.sidecar.switch.probes import PathMonitor
from peertap.sidecar.switch.routes import RouteTable
from peertap.sidecar.switch.scores import PathScores

TICK = 0.1
SIZES = [1472, 1232]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Paths:
    """Datagram paths as the channel keeps them: PathStats fed rounds and replies."""

    def __init__(self, clock: Clock, *peers: str) -> None:
        self.clock = clock
        self.stats = {p: PathStats(list(SIZES)) for p in peers}
        self.rounds = {p: 0 for p in peers}

    def round(self, peer: str, *, rtt_s: float | None) -> None:
        """One probe round (smallest size); answered after `rtt_s`, or lost (None)."""
        self.rounds[peer] += 1
        stats = self.stats[peer]
        stats.round_started(self.rounds[peer], 1)
        if rtt_s is not None:
            stats.reply(self.rounds[peer], SIZES[-1], rtt_s, self.clock.t + rtt_s)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {p: s.snapshot(self.clock.t, keyed=True) for p, s in self.stats.items()}


class Node:
    """A PathMonitor over trunk peers whose stream sends are recorded."""

    def __init__(self, *peers: str) -> None:
        self.clock = Clock()
        self.paths = Paths(self.clock, *peers)
        self.stream: list[tuple[str, bytes]] = []
        self.monitor = PathMonitor(
            scores=PathScores(clock=self.clock),
            peers=lambda: list(peers),
            send=self._send,
            load=lambda: {p: {"queued_bytes": 0} for p in peers},
            queue_limit=1 << 21,
            on_change=lambda: None,
            counters=Counters(),
            interval_s=TICK,
            paths=self.paths.snapshot,
            clock=self.clock,
        )

    def _send(self, peer: str, records: list[bytes]) -> bool:
        self.stream += [(peer, r) for r in records]
        return True

    def run(self, seconds: float, **rtts: float | None) -> None:
        """Ticks for `seconds`; each datagram path probes every PROBE_INTERVAL_S with
        the round trip given for it (None: unanswered)."""
        every = round(PROBE_INTERVAL_S / TICK)
        for i in range(round(seconds / TICK)):
            if i % every == 0:
                for peer, rtt in rtts.items():
                    self.paths.round(peer, rtt_s=rtt)
            self.clock.t += TICK
            self.monitor.tick()


def test_an_up_datagram_path_is_scored_from_its_own_probes_and_draws_no_stream_probe() -> None:
    node = Node("r1", "r2")
    node.run(3.0, r1=0.0004, r2=0.120)
    assert node.stream == [] and node.monitor.counters.events["probe_tx"] == 0
    status = node.monitor.status()
    for peer, ms in (("r1", 0.4), ("r2", 120.0)):
        assert status[peer]["source"] == "datagram"
        assert status[peer]["rtt_ms"] == pytest.approx(ms)
        assert status[peer]["samples"] > 0 and not status[peer]["stalled"]
    # The queued (slow) path ranks worse; the route table moves the destination off it.
    assert node.monitor.rank("r2") > node.monitor.rank("r1")
    routes = RouteTable(ttl_s=30, rank=node.monitor.rank)
    ann = wire.Announce(8, b"o" * 32, b"v" * 16, 1, 1, (b"t" * 16,))
    routes.learn("r2", ann, digest=digest_of(ann))  # learned first: would win a tie
    routes.learn("r1", ann, digest=digest_of(ann))
    assert routes.next_hops(b"v" * 16, b"t" * 16) == ("r1",)


def test_a_path_whose_queue_fills_ranks_worse_within_a_second_of_probes() -> None:
    node = Node("r1", "r2")
    node.run(3.0, r1=0.005, r2=0.005)  # a busy machine: 5 ms through either relay
    assert node.monitor.rank("r1") == node.monitor.rank("r2")
    node.run(1.0, r1=0.005, r2=0.100)  # r2's link queues 100 ms (a full tbf queue)
    assert node.monitor.rank("r2") >= node.monitor.rank("r1") + 3


def test_datagrams_refused_by_a_full_socket_buffer_mark_the_path_saturated() -> None:
    node = Node("r1")
    node.run(1.0, r1=0.0004)
    base = node.monitor.rank("r1")
    node.paths.stats["r1"].send_refused += 5
    node.run(TICK, r1=0.0004)
    row = node.monitor.status()["r1"]
    assert row["saturated"] and row["send_refused"] == 5
    assert node.monitor.rank("r1") == base + sc.SATURATED_RANK
    node.run(1.0, r1=0.0004)  # no more refusals: no longer saturated, the rank held
    assert not node.monitor.status()["r1"]["saturated"]
    assert node.monitor.rank("r1") == base + sc.SATURATED_RANK


def test_unanswered_datagram_rounds_stall_the_path_and_the_fallback_keeps_the_stall() -> None:
    node = Node("r1")
    node.run(1.0, r1=0.0004)
    assert not node.monitor.status()["r1"]["stalled"]
    # Frozen: rounds go unanswered; within a round and the stall time the path stalls.
    node.run(PROBE_INTERVAL_S + sc.STALL_S + 2 * TICK, r1=None)
    assert node.monitor.status()["r1"]["stalled"]
    assert node.monitor.rank("r1") >= sc.STALLED_RANK
    assert node.stream == []  # still up: still measured by the datagram path only
    # Once the datagram path is down, stream PROBEs measure it, and it stays stalled.
    node.run(DOWN_AFTER_S, r1=None)
    assert node.paths.snapshot()["r1"]["datagram_up"] is False
    assert node.stream and node.monitor.status()["r1"]["source"] == "stream"
    assert node.monitor.status()["r1"]["stalled"]
    # Its stream PROBEs answered: the path is live again (the rank recovers after a hold).
    for peer, record in node.stream:
        node.monitor.on_probe(peer, wire.decode_probe(record).answer().encode())
    assert not node.monitor.status()["r1"]["stalled"]


def test_stream_probes_from_before_the_datagram_path_came_up_are_neither_samples_nor_losses() -> (
    None
):
    node = Node("r1")
    node.monitor.tick()  # no datagram path answered yet: a stream PROBE goes out
    (peer, record) = node.stream[0]
    node.run(1.0, r1=0.0004)  # the datagram path is up and measures from now on
    samples = node.monitor.status()["r1"]["samples"]
    node.monitor.on_probe(peer, wire.decode_probe(record).answer().encode())
    assert node.monitor.status()["r1"]["samples"] == samples
    assert node.monitor.counters.drops["probe_unknown"] == 0
    node.run(sc.HOLD_S, r1=0.0004)
    assert node.monitor.counters.events.get("probe_lost", 0) == 0
    assert node.monitor.status()["r1"]["loss"] == 0.0
