"""Strictly increasing microsecond stamps from the wall clock.

ANNOUNCE sequences, CONTROL timestamps and DATA counters are all such stamps: they
increase across restarts of a node (the wall clock moves on), so receivers can keep
"highest seen" floors that survive a sender's restart and refuse replays of any age.
When more than one stamp is asked for within a microsecond the value runs ahead of
the clock by one per call; at the rates PeerTap sends, it catches up at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

US = 1_000_000


def now_us() -> int:
    return time.time_ns() // 1000


class Stamper:
    __slots__ = ("_clock", "last")

    def __init__(self, clock: Callable[[], int] = now_us) -> None:
        self._clock = clock
        self.last = 0

    def next(self) -> int:
        stamp = self._clock()
        if stamp <= self.last:
            stamp = self.last + 1
        self.last = stamp
        return stamp
