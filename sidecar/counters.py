"""Plain integer counters for the data plane, exported by the API as a snapshot.

The hot path bumps dictionary entries (cheap); Prometheus metrics are built
from snapshots on scrape, never updated per packet.
"""

from __future__ import annotations

from collections import Counter


class Counters:
    """Named event counters plus drop counters keyed by reason."""

    __slots__ = ("drops", "events")

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()

    def inc(self, name: str, n: int = 1) -> None:
        self.events[name] += n

    def drop(self, reason: str, n: int = 1) -> None:
        self.drops[reason] += n

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {"events": dict(self.events), "drops": dict(self.drops)}
