"""VFT routing: which trunk peers want packets carrying a (VLAN-ID, VFT).

Every node announces the tokens it wants (its MACs, broadcast, joined groups),
signed with its node key (the origin) under an increasing sequence. Relays flood each
new (origin, sequence) once to their other neighbours, so announcements cross
any number of relay hops without looping. For every origin a node keeps the
neighbour it heard it from at the smallest distance plus that neighbour's path rank
(scores.py: measured latency, loss and load of the trunk; 0 without measurements);
the next hops of a token are those best neighbours of all origins that want it.
`rescore` re-chooses them when ranks change. Entries expire when not
refreshed and vanish with the trunk they were learned over.

The table trusts what it is given: the node verifies an announcement's signature
(announcements.py) before `learn`, and `known` tells it when a copy is the very
announcement already verified (same origin, sequence and digest), which needs no
second verification. An origin that expires leaves its last sequence behind
(bounded, see `_Tombstones`), so a replay of its old announcements changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from ..wire import Announce

Key = bytes  # VLAN-ID || VFT
Rank = Callable[[str], int]  # a neighbour's path rank (scores.py); 0 = best


def _unranked(_peer: str) -> int:
    return 0


# Bounds against a neighbour announcing endless origins or tokens: new origins are
# refused (and counted by the caller) once either is reached. Honest origins are never
# evicted for new ones; a hostile trunk can keep at most (its ANNOUNCE rate limit x
# route TTL) origins alive, well below MAX_ORIGINS with the defaults.
MAX_ORIGINS = 16384
MAX_ENTRIES = 262144
MAX_TOMBSTONES = 65536


class _Tombstones:
    """Last sequence of origins that left the table; bounded, with a floor for the rest."""

    def __init__(self) -> None:
        self._last: dict[bytes, int] = {}
        self.floor = 0

    def remember(self, origin: bytes, sequence: int) -> None:
        self._last.pop(origin, None)
        if len(self._last) >= MAX_TOMBSTONES:
            oldest = next(iter(self._last))
            self.floor = max(self.floor, self._last.pop(oldest))
        self._last[origin] = sequence

    def allows(self, origin: bytes, sequence: int) -> bool:
        # The same announcement again is fine (a trunk came back and a relay replays it).
        last = self._last.get(origin)
        return sequence >= last if last is not None else sequence > self.floor

    def forget(self, origin: bytes) -> None:
        self._last.pop(origin, None)


@dataclass
class _Origin:
    """What one origin wants on one VLAN: its latest verified announcement and its paths."""

    last: Announce
    entries: frozenset[Key]
    refreshed: float
    digest: bytes
    via: dict[str, int] = field(default_factory=dict)  # neighbour -> distance

    @property
    def sequence(self) -> int:
        return self.last.sequence

    def best(self, rank: Rank) -> str | None:
        """The neighbour with the smallest distance + path rank; on a tie the path learned
        first, so a newcomer claiming an equal distance over an equally good path does not
        take an established path over."""
        if not self.via:
            return None
        return min(self.via.items(), key=lambda kv: kv[1] + rank(kv[0]))[0]


@dataclass(frozen=True)
class Learned:
    """Outcome of one announcement: whether to flood it on, and whether routes changed."""

    fresh: bool
    changed: bool
    refused: bool = False
    replayed: bool = False  # older than what the origin last announced


def slot(ann: Announce) -> bytes:
    """Table key of an announcement: its origin on its VLAN."""
    return ann.origin + ann.vlan_id


class RouteTable:
    def __init__(
        self,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        rank: Rank = _unranked,
    ) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self.rank = rank
        self._origins: dict[bytes, _Origin] = {}
        self._hops: dict[Key, tuple[str, ...]] = {}
        self._entries = 0
        self._tombstones = _Tombstones()

    def known(self, ann: Announce) -> tuple[int, bytes] | None:
        """(sequence, digest) of the stored announcement of the same origin and VLAN."""
        o = self._origins.get(slot(ann))
        return None if o is None else (o.sequence, o.digest)

    def next_hops(self, vlan_id: bytes, vft: bytes) -> tuple[str, ...]:
        return self._hops.get(vlan_id + vft, ())

    def wanted(self, vlan_id: bytes, vft: bytes) -> bool:
        return (vlan_id + vft) in self._hops

    def learn(self, peer: str, ann: Announce, *, digest: bytes) -> Learned:
        """Take a verified announcement (`digest` names its signed content)."""
        now = self._clock()
        key = slot(ann)
        entries = frozenset(ann.vlan_id + t for t in ann.tokens)
        known = self._origins.get(key)
        if known is None and not self._tombstones.allows(key, ann.sequence):
            return Learned(fresh=False, changed=False, replayed=True)
        grows = len(entries) - (len(known.entries) if known else 0)
        if (known is None and len(self._origins) >= MAX_ORIGINS) or (
            grows > 0 and self._entries + grows > MAX_ENTRIES
        ):
            return Learned(fresh=False, changed=False, refused=True)
        if known is None or ann.sequence > known.sequence:
            before = known.best(self.rank) if known else None
            before_entries = known.entries if known else frozenset()
            self._origins[key] = _Origin(ann, entries, now, digest, {peer: ann.distance})
            self._tombstones.forget(key)
            changed = before != peer or before_entries != entries
            if changed:
                self._rebuild()
            return Learned(fresh=True, changed=changed)
        if ann.sequence < known.sequence or digest != known.digest:
            return Learned(fresh=False, changed=False, replayed=ann.sequence < known.sequence)
        # Same announcement over another path: remember it as an alternative.
        before = known.best(self.rank)
        known.via[peer] = min(ann.distance, known.via.get(peer, ann.distance))
        known.refreshed = now
        changed = known.best(self.rank) != before
        if changed:
            self._rebuild()
        return Learned(fresh=False, changed=changed)

    def drop_peer(self, peer: str) -> bool:
        changed = False
        for key in list(self._origins):
            o = self._origins[key]
            if peer in o.via:
                del o.via[peer]
                changed = True
                if not o.via:
                    del self._origins[key]
                    self._tombstones.remember(key, o.sequence)
        if changed:
            self._rebuild()
        return changed

    def expire(self) -> bool:
        now = self._clock()
        stale = [k for k, o in self._origins.items() if now - o.refreshed > self.ttl_s]
        for k in stale:
            self._tombstones.remember(k, self._origins.pop(k).sequence)
        if stale:
            self._rebuild()
        return bool(stale)

    def replay_for(self, peer: str) -> Iterable[Announce]:
        """Latest announcement of every origin, as this node would flood it to `peer`."""
        for o in self._origins.values():
            best = o.best(self.rank)
            if best is None or best == peer:
                continue
            yield replace(o.last, distance=o.via[best])

    def origins(self) -> list[tuple[bytes, bytes, str, int, int, dict[str, int]]]:
        """(origin key, VLAN-ID, best neighbour, distance, tokens, every neighbour it was
        heard from -> distance) of every known slot."""
        out = []
        for o in self._origins.values():
            best = o.best(self.rank)
            if best is not None:
                out.append(
                    (o.last.origin, o.last.vlan_id, best, o.via[best], len(o.entries), dict(o.via))
                )
        return out

    def rescore(self) -> None:
        """Path ranks changed: choose every origin's best neighbour again."""
        self._rebuild()

    def sizes(self) -> dict[str, int]:
        return {"origins": len(self._origins), "tokens": len(self._hops)}

    def _rebuild(self) -> None:
        self._entries = sum(len(o.entries) for o in self._origins.values())
        hops: dict[Key, set[str]] = {}
        for o in self._origins.values():
            best = o.best(self.rank)
            if best is None:
                continue
            for key in o.entries:
                hops.setdefault(key, set()).add(best)
        self._hops = {k: tuple(sorted(v)) for k, v in hops.items()}
