"""VFT routing: which trunk peers want packets carrying a (VLAN-ID, VFT).

Every node announces the tokens it wants (its MACs, broadcast, joined groups)
under a random origin id with an increasing sequence number. Relays flood each
new (origin, sequence) once to their other neighbours, so announcements cross
any number of relay hops without looping. For every origin a node keeps the
neighbour it heard it from at the smallest distance; the next hops of a token
are those best neighbours of all origins that want it. Entries expire when not
refreshed and vanish with the trunk they were learned over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..wire import Announce

Key = bytes  # VLAN-ID || VFT

# Bounds against a neighbour announcing endless origins or tokens: new origins are
# refused (and counted by the caller) once either is reached.
MAX_ORIGINS = 16384
MAX_ENTRIES = 262144


@dataclass
class _Origin:
    sequence: int
    entries: frozenset[Key]
    hop_limit: int
    refreshed: float
    via: dict[str, int] = field(default_factory=dict)  # neighbour -> distance

    def best(self) -> str | None:
        if not self.via:
            return None
        return min(self.via.items(), key=lambda kv: (kv[1], kv[0]))[0]


@dataclass(frozen=True)
class Learned:
    """Outcome of one announcement: whether to flood it on, and whether routes changed."""

    fresh: bool
    changed: bool
    refused: bool = False


class RouteTable:
    def __init__(self, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._origins: dict[bytes, _Origin] = {}
        self._hops: dict[Key, tuple[str, ...]] = {}
        self._entries = 0

    def next_hops(self, vlan_id: bytes, vft: bytes) -> tuple[str, ...]:
        return self._hops.get(vlan_id + vft, ())

    def wanted(self, vlan_id: bytes, vft: bytes) -> bool:
        return (vlan_id + vft) in self._hops

    def learn(self, peer: str, ann: Announce, *, accept_vlan: Callable[[bytes], bool]) -> Learned:
        now = self._clock()
        entries = frozenset(v + t for v, t in ann.entries if accept_vlan(v))
        known = self._origins.get(ann.origin)
        grows = len(entries) - (len(known.entries) if known else 0)
        if (known is None and len(self._origins) >= MAX_ORIGINS) or (
            grows > 0 and self._entries + grows > MAX_ENTRIES
        ):
            return Learned(fresh=False, changed=False, refused=True)
        if known is None or ann.sequence > known.sequence:
            before = known.best() if known else None
            before_entries = known.entries if known else frozenset()
            o = _Origin(ann.sequence, entries, ann.hop_limit, now, {peer: ann.distance})
            self._origins[ann.origin] = o
            changed = before != peer or before_entries != entries
            if changed:
                self._rebuild()
            return Learned(fresh=True, changed=changed)
        if ann.sequence < known.sequence:
            return Learned(fresh=False, changed=False)
        # Same announcement over another path: remember it as an alternative.
        before = known.best()
        known.via[peer] = min(ann.distance, known.via.get(peer, ann.distance))
        known.refreshed = now
        changed = known.best() != before
        if changed:
            self._rebuild()
        return Learned(fresh=False, changed=changed)

    def drop_peer(self, peer: str) -> bool:
        changed = False
        for origin in list(self._origins):
            o = self._origins[origin]
            if peer in o.via:
                del o.via[peer]
                changed = True
                if not o.via:
                    del self._origins[origin]
        if changed:
            self._rebuild()
        return changed

    def expire(self) -> bool:
        now = self._clock()
        stale = [k for k, o in self._origins.items() if now - o.refreshed > self.ttl_s]
        for k in stale:
            del self._origins[k]
        if stale:
            self._rebuild()
        return bool(stale)

    def replay_for(self, peer: str) -> Iterable[Announce]:
        """Latest announcement of every origin, as this node would flood it to `peer`."""
        for origin, o in self._origins.items():
            best = o.best()
            if best is None or best == peer:
                continue
            yield Announce(
                hop_limit=o.hop_limit,
                origin=origin,
                sequence=o.sequence,
                distance=o.via[best],
                entries=tuple((k[:16], k[16:]) for k in sorted(o.entries)),
            )

    def sizes(self) -> dict[str, int]:
        return {"origins": len(self._origins), "tokens": len(self._hops)}

    def _rebuild(self) -> None:
        self._entries = sum(len(o.entries) for o in self._origins.values())
        hops: dict[Key, set[str]] = {}
        for o in self._origins.values():
            best = o.best()
            if best is None:
                continue
            for key in o.entries:
                hops.setdefault(key, set()).add(best)
        self._hops = {k: tuple(sorted(v)) for k, v in hops.items()}
