"""Per-peer path state: probing, path MTU, RTT, loss and load of one datagram path.

Every PROBE_INTERVAL_S the node sends a PROBE at the smallest candidate datagram size,
and every SWEEP_EVERY rounds (and until the path is up) one at each candidate size (DF
set, so an oversize probe is simply lost, never fragmented). The peer answers each it
receives with a PROBE_REPLY naming its size. From the replies:

- **up**: a reply arrived within DOWN_AFTER_S; otherwise the path is down and DATA
  goes over the trunk stream (the fallback) while probing goes on;
- **datagram size** (path MTU): the largest size answered in the last LOSS_WINDOW
  rounds (at least three sweeps);
- **RTT**: each reply's round trip (last sample and a 1/8 EWMA, as TCP's SRTT);
- **loss**: the share of the last LOSS_WINDOW rounds whose smallest probe got no reply;
- **load**: bytes and datagrams sent per second, and datagrams refused by a full
  socket buffer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

PROBE_INTERVAL_S = 0.5
DOWN_AFTER_S = 2.0
SWEEP_EVERY = 10
LOSS_WINDOW = 32
RTT_GAIN = 0.125
MIN_DATAGRAM = 1232
"""Smallest datagram size probed: IPv6's minimum MTU (1280) less IPv6 and UDP headers."""
IPV4_UDP_HEADERS = 28
IPV6_UDP_HEADERS = 48


def candidate_sizes(route_mtu: int, *, ipv6: bool = False) -> list[int]:
    """Datagram sizes to probe, largest first, for a route of `route_mtu` bytes."""
    top = route_mtu - (IPV6_UDP_HEADERS if ipv6 else IPV4_UDP_HEADERS)
    sizes = {top, 1472, 1452, 1400, MIN_DATAGRAM}
    return sorted((s for s in sizes if MIN_DATAGRAM <= s <= top), reverse=True) or [MIN_DATAGRAM]


@dataclass
class PathStats:
    """What the path measured; `snapshot` is what /status shows and scoring reads."""

    sizes: list[int]
    last_reply: float = -1.0
    rtt_s: float = -1.0
    rtt_last_s: float = -1.0
    datagram_size: int = MIN_DATAGRAM
    probes_sent: int = 0
    replies: int = 0
    datagrams_sent: int = 0
    bytes_sent: int = 0
    datagrams_received: int = 0
    bytes_received: int = 0
    send_refused: int = 0
    went_down: int = 0
    _rounds: deque[tuple[int, set[int]]] = field(default_factory=lambda: deque(maxlen=LOSS_WINDOW))
    _rate_mark: tuple[float, int, int] = (0.0, 0, 0)
    _rate: tuple[float, float] = (0.0, 0.0)
    _was_up: bool = False

    def sizes_for(self, round_id: int) -> list[int]:
        """Sizes to probe in a round: all of them in a sweep, else the smallest only."""
        if self.last_reply < 0 or round_id % SWEEP_EVERY == 1:
            return self.sizes
        return self.sizes[-1:]

    def round_started(self, round_id: int, probes: int) -> None:
        self._rounds.append((round_id, set()))
        self.probes_sent += probes

    def reply(self, round_id: int, size: int, rtt_s: float, now: float) -> None:
        for rid, answered in self._rounds:
            if rid == round_id:
                answered.add(size)
                break
        else:
            return  # a reply to a round long gone: no information
        self.replies += 1
        self.last_reply = now
        self.rtt_last_s = rtt_s
        self.rtt_s = rtt_s if self.rtt_s < 0 else self.rtt_s + RTT_GAIN * (rtt_s - self.rtt_s)
        self.datagram_size = max(
            (s for _, answered in self._rounds for s in answered), default=MIN_DATAGRAM
        )

    def up(self, now: float) -> bool:
        is_up = self.last_reply >= 0 and now - self.last_reply < DOWN_AFTER_S
        if self._was_up and not is_up:
            self.went_down += 1
        self._was_up = is_up
        return is_up

    def loss(self) -> float:
        """Share of finished probe rounds (all but the newest) whose smallest probe was lost."""
        done = list(self._rounds)[:-1]
        if not done:
            return 0.0
        smallest = min(self.sizes)
        return sum(1 for _, answered in done if smallest not in answered) / len(done)

    def sent(self, datagrams: int, size: int) -> None:
        self.datagrams_sent += datagrams
        self.bytes_sent += size

    def rate(self, now: float) -> tuple[float, float]:
        """(bytes/s, datagrams/s) sent, over the time since the previous call (>= 1 s)."""
        mark, b, d = self._rate_mark
        if now - mark >= 1.0:
            span = now - mark if mark else 0.0
            if span:
                self._rate = ((self.bytes_sent - b) / span, (self.datagrams_sent - d) / span)
            self._rate_mark = (now, self.bytes_sent, self.datagrams_sent)
        return self._rate

    def snapshot(self, now: float, *, keyed: bool) -> dict[str, Any]:
        bps, dps = self.rate(now)
        up = keyed and self.up(now)
        return {
            "transport": "datagram" if up else "stream",
            "datagram_up": up,
            "rtt_ms": round(self.rtt_s * 1000, 3) if self.rtt_s >= 0 else None,
            "rtt_last_ms": round(self.rtt_last_s * 1000, 3) if self.rtt_last_s >= 0 else None,
            "loss": round(self.loss(), 3),
            "datagram_size": self.datagram_size,
            "send_bytes_per_s": round(bps),
            "send_datagrams_per_s": round(dps),
            "datagrams_sent": self.datagrams_sent,
            "bytes_sent": self.bytes_sent,
            "datagrams_received": self.datagrams_received,
            "send_refused": self.send_refused,
            "probes_sent": self.probes_sent,
            "probe_replies": self.replies,
            "went_down": self.went_down,
        }
