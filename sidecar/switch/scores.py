"""Path scores: latency, loss and load of the path to each neighbour, as a route rank.

One mechanism measures each path at a time, the one whose path carries the DATA
(probes.py picks it): the datagram path's own probes while it is up (`datagram`),
PROBE round trips on the trunk stream otherwise (`stream`). Either feeds samples in;
the route table asks for one small integer per neighbour, its *rank*, and adds it to
an origin's distance to choose the best next hop for that destination (routes.py):

  stream:   rtt sample -> smoothed RTT (RFC 6298 weights); lost probe -> loss (EWMA)
  datagram: the path's own RTT samples -> smoothed RTT (gain DATAGRAM_RTT_GAIN);
            its loss share, taken as it is
  cost = smoothed RTT + LOSS_COST_MS x loss     -> bucket
  load: stream queue over a quarter of its bound, or datagrams refused by a full
        socket buffer since the last look   -> saturated -> + SATURATED_RANK
  no answer for STALL_S while probes wait       -> stalled      -> + STALLED_RANK

  raw rank = bucket(cost) (log scale, with hysteresis) + penalties
  rank     = raw rank at once when it rises; when it falls, only once it has not
             risen for HOLD_S (quick to worsen, slow to recover)

Buckets make paths of about the same quality tie (the route table then keeps the
established path, so an equal newcomer takes nothing over and equal relays do not
flap). The slow recovery keeps traffic that moved off a loaded or stalled relay
from rushing back the moment its queue drained, which would load it again. A
stalled path stays usable as a last resort: ranks only order paths, they never
remove one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

STALL_S = 0.3
HOLD_S = 10.0
LOSS_COST_MS = 100.0
LOSS_WEIGHT = 0.1
SATURATED_FRACTION = 0.25
SATURATED_RANK = 3
STALLED_RANK = 100
UNKNOWN_RANK = 2
BUCKET_BASE_MS = 0.5
HYSTERESIS = 0.2
DATAGRAM_RTT_GAIN = 0.5
"""Smoothing gain for the datagram path's RTT samples. It probes 2 times a second, a
stream 10 times: at 1/2 per sample the smoothed RTT follows a change (a relay's queue
filling) as fast as RFC 6298's 1/8 does at 10 samples a second (the old estimate keeps
about a quarter of its weight after one second either way)."""


def bucket(cost_ms: float) -> int:
    """0 below 0.5 ms, then one more per doubling: 1 up to 1.5 ms, 2 up to 3.5 ms, ..."""
    return int(math.log2(1.0 + max(0.0, cost_ms) / BUCKET_BASE_MS))


def _bucket_floor(b: int) -> float:
    return float(BUCKET_BASE_MS * (2**b - 1))


@dataclass
class PathScore:
    """What is known about the path to one neighbour."""

    srtt_ms: float | None = None
    rttvar_ms: float = 0.0
    loss: float = 0.0
    queued_bytes: int = 0
    saturated: bool = False
    waiting_since: float | None = None  # oldest unanswered probe
    last_answer: float | None = None
    bucket: int | None = None
    shown: int | None = None  # the rank given out (see the module docstring)
    held_until: float = 0.0
    samples: int = 0
    lost: int = 0
    source: str = "stream"  # which probes measure the path: "stream" or "datagram"
    send_bytes_per_s: int = 0  # datagram path only: the load it carries
    send_refused: int = 0  # datagram path only: datagrams a full socket buffer refused

    def cost_ms(self) -> float:
        srtt = self.srtt_ms if self.srtt_ms is not None else 0.0
        return srtt + LOSS_COST_MS * self.loss


class PathScores:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._paths: dict[str, PathScore] = {}

    def _path(self, peer: str) -> PathScore:
        p = self._paths.get(peer)
        if p is None:
            p = self._paths[peer] = PathScore()
        return p

    # ---- samples ------------------------------------------------------------------

    def probe_sent(self, peer: str) -> None:
        p = self._path(peer)
        if p.waiting_since is None:
            p.waiting_since = self._clock()

    def rtt(self, peer: str, seconds: float, *, oldest_waiting: float | None = None) -> None:
        """One round trip; `oldest_waiting` is when the oldest probe still unanswered
        was sent (None: none is)."""
        p = self._path(peer)
        ms = seconds * 1000.0
        if p.srtt_ms is None:
            p.srtt_ms, p.rttvar_ms = ms, ms / 2
        else:
            p.rttvar_ms = 0.75 * p.rttvar_ms + 0.25 * abs(p.srtt_ms - ms)
            p.srtt_ms = 0.875 * p.srtt_ms + 0.125 * ms
        p.loss *= 1.0 - LOSS_WEIGHT
        p.samples += 1
        p.last_answer = self._clock()
        p.waiting_since = oldest_waiting

    def lost(self, peer: str, count: int = 1) -> None:
        p = self._path(peer)
        for _ in range(count):
            p.loss = (1.0 - LOSS_WEIGHT) * p.loss + LOSS_WEIGHT
        p.lost += count

    def datagram(
        self,
        peer: str,
        *,
        srtt_ms: float,
        rtt_last_ms: float | None,
        loss: float,
        new_replies: int,
        waiting_since: float | None,
        send_bytes_per_s: int,
        send_refused: int,
    ) -> None:
        """The datagram path's own measurements (datagram/path.py), read once a tick:
        `new_replies` probe replies came since the last look, the latest after
        `rtt_last_ms` (a sample; the path's `srtt_ms` seeds a first estimate); its loss
        share replaces ours; `waiting_since`: when a probe round went out that no reply
        has followed yet (None: answered)."""
        p = self._path(peer)
        if p.srtt_ms is None:
            p.srtt_ms, p.rttvar_ms = srtt_ms, srtt_ms / 2
        elif new_replies and rtt_last_ms is not None:
            p.rttvar_ms = 0.75 * p.rttvar_ms + 0.25 * abs(p.srtt_ms - rtt_last_ms)
            p.srtt_ms += DATAGRAM_RTT_GAIN * (rtt_last_ms - p.srtt_ms)
        p.loss = loss
        p.samples += new_replies
        if new_replies:
            p.last_answer = self._clock()
        p.waiting_since = waiting_since
        p.source = "datagram"
        p.send_bytes_per_s = send_bytes_per_s
        p.send_refused = send_refused

    def stream(self, peer: str) -> None:
        """The stream's PROBEs measure the path from now on (the datagram path is down
        or absent); a stall the datagram probes found stays until a PROBE is answered."""
        p = self._paths.get(peer)
        if p is not None and p.source != "stream":
            p.source = "stream"
            p.send_bytes_per_s = 0

    def load(
        self, peer: str, *, queued_bytes: int, limit_bytes: int, refused: bool = False
    ) -> None:
        """Load sample: the stream's send queue, and whether datagrams to the peer were
        refused by a full socket buffer since the last sample."""
        p = self._path(peer)
        p.queued_bytes = queued_bytes
        p.saturated = queued_bytes > SATURATED_FRACTION * limit_bytes or refused

    def forget(self, peer: str) -> None:
        self._paths.pop(peer, None)

    # ---- ranks --------------------------------------------------------------------

    def stalled(self, peer: str) -> bool:
        p = self._paths.get(peer)
        return (
            p is not None
            and p.waiting_since is not None
            and self._clock() - p.waiting_since > STALL_S
        )

    def rank(self, peer: str) -> int:
        """The path's rank (0 best); the route table adds it to the distance."""
        p = self._paths.get(peer)
        stalled = STALLED_RANK if self.stalled(peer) else 0
        if p is None or p.srtt_ms is None:
            return UNKNOWN_RANK + stalled
        raw = self._bucket(p) + stalled + (SATURATED_RANK if p.saturated else 0)
        now = self._clock()
        if p.shown is None or raw > p.shown:
            if p.shown is not None:
                p.held_until = now + HOLD_S
            p.shown = raw
        elif raw < p.shown and now >= p.held_until:
            p.shown = raw
        return p.shown

    def _bucket(self, p: PathScore) -> int:
        cost = p.cost_ms()
        new = bucket(cost)
        old = p.bucket
        if old is not None and new != old:
            # Stay in the old bucket until the cost is clearly past its boundary.
            edge = _bucket_floor(max(new, old))
            if abs(cost - edge) < HYSTERESIS * max(edge, BUCKET_BASE_MS):
                new = old
        p.bucket = new
        return new

    def ranks(self, peers: list[str]) -> dict[str, int]:
        return {peer: self.rank(peer) for peer in peers}

    def status(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for peer, p in sorted(self._paths.items()):
            out[peer] = {
                "rank": self.rank(peer),
                "source": p.source,
                "rtt_ms": None if p.srtt_ms is None else round(p.srtt_ms, 3),
                "rttvar_ms": round(p.rttvar_ms, 3),
                "loss": round(p.loss, 4),
                "queued_bytes": p.queued_bytes,
                "saturated": p.saturated,
                "stalled": self.stalled(peer),
                "samples": p.samples,
                "lost": p.lost,
                "send_bytes_per_s": p.send_bytes_per_s,
                "send_refused": p.send_refused,
            }
        return out
