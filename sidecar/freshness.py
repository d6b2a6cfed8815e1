"""Freshness of signed stamps (ANNOUNCE sequences, CONTROL timestamps): no replay of any age.

A stamp is a microsecond wall-clock value (stamps.py) chosen by the signer. `in_window`
refuses stamps too far in the past or the future for this node's clock. `StampGuard`
remembers, per signer key, the highest stamp handled and the stamps handled within
`reorder_us` below it, so each (key, stamp) is handled once even when copies arrive over
several paths or out of order. The table of keys is bounded; when a key must go, the
global floor rises to its highest stamp (capped near the local clock), and a key
without an entry is held to that floor: forgetting never re-opens a replay.
"""

from __future__ import annotations

from collections import OrderedDict

from . import stamps


def in_window(stamp: int, *, now: int, max_age_us: int, skew_us: int) -> str | None:
    """None if `stamp` is acceptable at `now`, else "stale" or "future"."""
    if stamp > now + skew_us:
        return "future"
    if stamp < now - max_age_us - skew_us:
        return "stale"
    return None


class _Seen:
    __slots__ = ("highest", "recent")

    def __init__(self) -> None:
        self.highest = 0
        self.recent: set[int] = set()


class StampGuard:
    def __init__(
        self,
        *,
        max_keys: int = 65536,
        reorder_us: int = 10 * stamps.US,
        max_recent: int = 1024,
        floor_lead_us: int = 60 * stamps.US,
    ) -> None:
        self.max_keys = max_keys
        self.reorder_us = reorder_us
        self.max_recent = max_recent
        self.floor_lead_us = floor_lead_us
        self.floor = 0
        self._keys: OrderedDict[bytes, _Seen] = OrderedDict()

    def first_time(self, key: bytes, stamp: int, *, now: int) -> bool:
        """True (and remembered) if `key` never had `stamp` handled; False for a replay."""
        seen = self._keys.get(key)
        if seen is None:
            if stamp <= self.floor:
                return False
            if len(self._keys) >= self.max_keys:
                _, gone = self._keys.popitem(last=False)
                self.floor = max(self.floor, min(gone.highest, now + self.floor_lead_us))
            seen = self._keys[key] = _Seen()
        else:
            self._keys.move_to_end(key)
        if stamp > seen.highest:
            seen.highest = stamp
            low = stamp - self.reorder_us
            if len(seen.recent) >= self.max_recent or any(s < low for s in seen.recent):
                seen.recent = {s for s in seen.recent if s >= low}
            seen.recent.add(stamp)
            return True
        if stamp < seen.highest - self.reorder_us or stamp in seen.recent:
            return False
        if len(seen.recent) >= self.max_recent:
            return False
        seen.recent.add(stamp)
        return True

    def __len__(self) -> int:
        return len(self._keys)
