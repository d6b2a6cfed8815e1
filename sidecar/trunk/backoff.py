"""Redial delays: exponential backoff with full jitter between a floor and a ceiling."""

from __future__ import annotations

import random


class Backoff:
    """Delay n is uniform in [floor, min(ceiling, floor * 2**n)]; `reset` starts over.

    Full jitter keeps many nodes that lost the same peer from redialing in step.
    """

    __slots__ = ("_attempt", "_ceiling", "_floor", "_random")

    def __init__(self, floor_s: float, ceiling_s: float, *, rng: random.Random | None = None):
        self._floor = floor_s
        self._ceiling = ceiling_s
        self._attempt = 0
        self._random = rng or random.Random()

    def next_delay(self) -> float:
        top = min(self._ceiling, self._floor * 2.0 ** min(self._attempt, 60))
        self._attempt += 1
        return self._random.uniform(self._floor, top)

    def reset(self) -> None:
        self._attempt = 0
