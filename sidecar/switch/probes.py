"""Path measurement for every neighbour: one mechanism per path, into PathScores.

Each path is measured by the probes of the transport that carries its DATA, never
by two at once:

- **datagram path up** (DATA travels in UDP datagrams): the datagram channel probes
  the path itself (datagram/path.py); every interval this module reads its figures
  (`paths()`, the trunk's path_stats) and sends no PROBE on the stream:
      probe_replies rose                  -> answered; rtt_last_ms is an RTT sample
      loss share                          -> the score's loss
      probes_sent rose, probe_replies not -> a round waits (since this tick): stall
      send_refused rose                   -> saturated (load)
- **stream only** (no datagram path, or it is down): PROBE records on the trunk
  stream, as follows.

  every interval, per trunk peer: expire probes unanswered for LOST_AFTER_S (lost)
      -> PROBE(random id, echo) -> trunk.send (queued behind the data, so the round
      trip includes the queue) -> queue length sample (load)
  PROBE from a neighbour -> rate limit per trunk -> reply with id and echo
  reply -> id must be one we sent and still wait for -> RTT sample
  ranks changed -> the route table re-chooses next hops (`on_change`)

Probe ids are random, so a neighbour cannot answer a probe before it received it
(and look faster than it is); a reply to an id we did not send is counted and
ignored. Probes and replies are never forwarded. Everything is bounded: the
outstanding probes per peer and the replies a neighbour can draw per second.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from .. import wire
from ..counters import Counters
from ..ratelimit import KeyedBuckets
from .scores import PathScores

LOST_AFTER_S = 2.0
MAX_OUTSTANDING = 64
REPLIES_PER_S = 100.0


PathFigures = Callable[[], dict[str, dict[str, Any]]]


def _no_datagram_paths() -> dict[str, dict[str, Any]]:
    return {}


@dataclass
class _DatagramMarks:
    """The datagram path's counters at the previous look, and an unanswered round."""

    probes_sent: int
    replies: int
    send_refused: int
    waiting_since: float | None = None


class PathMonitor:
    def __init__(
        self,
        *,
        scores: PathScores,
        peers: Callable[[], list[str]],
        send: Callable[[str, list[bytes]], bool],
        load: Callable[[], dict[str, dict[str, int]]],
        queue_limit: int,
        on_change: Callable[[], None],
        counters: Counters,
        interval_s: float,
        paths: PathFigures = _no_datagram_paths,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scores = scores
        self._peers = peers
        self._send = send
        self._load = load
        self._paths = paths
        self._marks: dict[str, _DatagramMarks] = {}
        self._queue_limit = queue_limit
        self._on_change = on_change
        self.counters = counters
        self.interval_s = interval_s
        self._clock = clock
        self._outstanding: dict[str, OrderedDict[int, float]] = {}
        self._replies = KeyedBuckets(
            rate=REPLIES_PER_S, burst=2 * REPLIES_PER_S, max_keys=4096, clock=clock
        )
        self._ranks: dict[str, int] = {}

    async def run(self) -> None:
        while True:
            self.tick()
            await trio.sleep(self.interval_s)

    def tick(self) -> None:
        """Measure every peer once (its datagram path's figures, or a stream PROBE),
        sample loads, and re-rank."""
        now = self._clock()
        peers = self._peers()
        paths = self._paths()
        refused: set[str] = set()
        for peer in peers:
            row = paths.get(peer)
            if row is not None and row.get("datagram_up") and row.get("rtt_ms") is not None:
                if self._read_datagram_path(peer, row, now):
                    refused.add(peer)
                continue
            if self._marks.pop(peer, None) is not None:
                # Back on the stream: PROBEs from before the datagram path came up are
                # no evidence about the path now (not lost, just superseded).
                self._outstanding.pop(peer, None)
                self.scores.stream(peer)
            waiting = self._outstanding.setdefault(peer, OrderedDict())
            lost = 0
            while waiting and (
                now - next(iter(waiting.values())) > LOST_AFTER_S or len(waiting) >= MAX_OUTSTANDING
            ):
                waiting.popitem(last=False)
                lost += 1
            if lost:
                self.scores.lost(peer, lost)
                self.counters.inc("probe_lost", lost)
            probe_id = secrets.randbits(64)
            echo = int(now * 1e6) & 0xFFFFFFFFFFFFFFFF
            # A probe that found the queue full was never sent (the load sample says why).
            if self._send(peer, [wire.Probe(probe_id, echo).encode()]):
                waiting[probe_id] = now
                self.scores.probe_sent(peer)
                self.counters.inc("probe_tx")
        for peer, row in self._load().items():
            self.scores.load(
                peer,
                queued_bytes=row.get("queued_bytes", 0),
                limit_bytes=self._queue_limit,
                refused=peer in refused,
            )
        self._rerank(peers)

    def _read_datagram_path(self, peer: str, row: dict[str, Any], now: float) -> bool:
        """Score `peer` from its datagram path's own probes; True if datagrams to it
        were refused by a full socket buffer since the last look (load)."""
        sent = int(row.get("probes_sent", 0))
        replies = int(row.get("probe_replies", 0))
        refused = int(row.get("send_refused", 0))
        marks = self._marks.get(peer)
        if marks is None:
            marks = self._marks[peer] = _DatagramMarks(sent, replies, refused)
            new_replies, refused_more = 0, False
        else:
            new_replies = max(0, replies - marks.replies)
            refused_more = refused > marks.send_refused
            if new_replies:
                marks.waiting_since = None
            elif sent > marks.probes_sent and marks.waiting_since is None:
                # A round went out since the last look and nothing came back yet; the
                # round left at most one interval ago, so this errs on the late side.
                marks.waiting_since = now
            marks.probes_sent, marks.replies, marks.send_refused = sent, replies, refused
        self.scores.datagram(
            peer,
            srtt_ms=float(row["rtt_ms"]),
            rtt_last_ms=row.get("rtt_last_ms"),
            loss=float(row.get("loss", 0.0)),
            new_replies=new_replies,
            waiting_since=marks.waiting_since,
            send_bytes_per_s=int(row.get("send_bytes_per_s", 0)),
            send_refused=refused,
        )
        return refused_more

    def _rerank(self, peers: list[str]) -> None:
        ranks = self.scores.ranks(peers)
        if ranks != self._ranks:
            self._ranks = ranks
            self._on_change()

    def rank(self, peer: str) -> int:
        """The rank last computed for `peer` (stable between ticks)."""
        return self._ranks.get(peer, 0)

    def on_probe(self, peer: str, packet: bytes) -> None:
        """A PROBE record from neighbour `peer` (raises wire.MalformedPacket)."""
        probe = wire.decode_probe(packet)
        if not probe.reply:
            if self._replies.take(peer):
                self._send(peer, [probe.answer().encode()])
            else:
                self.counters.drop("probe_rate")
            return
        waiting = self._outstanding.get(peer)
        sent = waiting.pop(probe.probe_id, None) if waiting is not None else None
        if sent is None:
            self.counters.drop("probe_unknown")
            return
        assert waiting is not None
        if peer in self._marks:
            return  # sent before the datagram path came up, which measures it now
        oldest = next(iter(waiting.values())) if waiting else None
        self.scores.rtt(peer, self._clock() - sent, oldest_waiting=oldest)
        self.counters.inc("probe_rtt")

    def forget(self, peer: str) -> None:
        self._outstanding.pop(peer, None)
        self._marks.pop(peer, None)
        self._replies.forget(peer)
        self.scores.forget(peer)
        self._ranks.pop(peer, None)

    def status(self) -> dict[str, dict[str, Any]]:
        return self.scores.status()
