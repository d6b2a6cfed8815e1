"""Learned routes on the management VLAN: which trunk leads to a node, as switches learn MACs.

Every CONTROL packet is signed by its origin node, and a node handles only the first copy
of each (the others are duplicates), so the trunk the first copy of a node's packet came
in on leads back to that node the quickest way. A node remembers that trunk per signer
(`learned`), and sends a DIRECTED message (a Welcome, whole or in PARTs) only over the
trunks leading to its destinations (`toward`). Correctness comes first: without a route
learned within TTL_S over a trunk that is still up, or when a route points back where the
message came from, `toward` says flood (None), and the committer floods a Welcome again
when its joiner is not heard from soon after (vlan.py). A stale route can delay a Welcome,
never lose it for good.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from . import messages as m

TTL_S = 30.0
MAX_ROUTES = 65536


class Routes:
    def __init__(
        self,
        *,
        ttl_s: float = TTL_S,
        max_routes: int = MAX_ROUTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_routes = max_routes
        self._clock = clock
        # signer -> (trunk peer, when learned), least recently learned first.
        self._routes: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    def learned(self, signer: bytes, peer: str) -> None:
        """The first copy of a packet signed by `signer` arrived from neighbour `peer`."""
        self._routes[signer] = (peer, self._clock())
        self._routes.move_to_end(signer)
        while len(self._routes) > self.max_routes:
            self._routes.popitem(last=False)

    def toward(
        self, destinations: Sequence[bytes], peers: Iterable[str], *, came_from: str | None
    ) -> list[str] | None:
        """The trunks (among `peers`, the ones up now) that lead to every destination, or
        None when the message must be flooded: a destination has no fresh route, its trunk
        is down, or its route points back to `came_from`."""
        up = set(peers)
        now = self._clock()
        out: list[str] = []
        for key in destinations:
            route = self._routes.get(key)
            if route is None:
                return None
            peer, at = route
            if now - at >= self.ttl_s or peer not in up or peer == came_from:
                return None
            if peer not in out:
                out.append(peer)
        return out

    def next_hops(
        self, kind: int, body: bytes, peers: Sequence[str], *, came_from: str | None
    ) -> tuple[list[str], bool]:
        """Where a CONTROL message goes from here: every peer but the one it came from, or
        for a DIRECTED message the trunks toward its destinations when every route is known
        (then the flag is True)."""
        flood = [p for p in peers if p != came_from]
        if kind != m.DIRECTED:
            return flood, False
        try:
            directed = m.Directed.decode(body)
        except m.MalformedControl:
            return flood, False  # members refuse it and count it; relaying it changes nothing
        toward = self.toward(directed.destinations, peers, came_from=came_from)
        return (flood, False) if toward is None else (toward, True)
