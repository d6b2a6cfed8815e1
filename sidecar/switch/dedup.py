"""Duplicate suppression for forwarded packets.

A packet is identified by a hash of its bytes (forwarding.dedup_key), so only an
exact copy is a duplicate. When several paths deliver the same flood, a relay
forwards it once.
Two generations of bounded size keep memory flat: lookups see both, inserts
go to the newer, and the older is dropped when the newer fills up.
"""

from __future__ import annotations

GENERATION = 32768


class Dedup:
    __slots__ = ("_new", "_old", "size")

    def __init__(self, size: int = GENERATION) -> None:
        self.size = size
        self._new: set[bytes] = set()
        self._old: set[bytes] = set()

    def first_time(self, key: bytes) -> bool:
        if key in self._new or key in self._old:
            return False
        if len(self._new) >= self.size:
            self._old, self._new = self._new, set()
        self._new.add(key)
        return True
