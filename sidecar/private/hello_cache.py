"""Answering a joiner at once from what a relay already heard: recent group HELLOs.

A joiner's HELLO (no group) asks "which group is there?". Members answer it with their
own HELLO (the committer, PrivateVlan), and a relay answers it too, from this cache:
per VLAN-ID the latest HELLO packet of each group it flooded (at most MAX_GROUPS, the
most recently heard kept), sent back to the neighbour the question came from, at most
once per ANSWER_GAP_S per neighbour and VLAN. The answers are the members' own signed
packets, unchanged, so a relay can make a joiner learn of a group sooner but cannot
forge, alter or invent one; the joiner checks them like any CONTROL (stamp within the
clock skew window, once per signer and stamp, signature, credential). A relay also
sends them over a trunk that just came up: after a partition, the groups on either
side learn of each other at once instead of at their next HELLO.

Only HELLOs that carry their member's whole credential are cached: one that names it by
digest (credential_book.py) tells nothing to a joiner, which holds no credential yet.
Members make sure such HELLOs keep coming (the committer's always carry it).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from .. import wire
from . import messages as m

MAX_GROUPS = 4
MAX_VLANS = 4096
ANSWER_GAP_S = 0.5


class HelloCache:
    def __init__(self, *, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        # VLAN-ID -> group tag -> (when, packet), most recently heard last.
        self._hellos: OrderedDict[bytes, OrderedDict[bytes, tuple[float, bytes]]] = OrderedDict()
        self._answered: dict[tuple[str, bytes], float] = {}

    def heard(self, peer: str, msg: wire.Control, packet: bytes) -> list[bytes]:
        """Take one verified, first-seen HELLO from neighbour `peer`; returns the packets
        to send back to `peer` (cached group HELLOs if it was a joiner's question)."""
        try:
            hello = m.Hello.decode(msg.body)
        except m.MalformedControl:
            return []
        now = self._clock()
        if hello.group != m.NO_GROUP:
            if not hello.credential:
                return []  # a digest: useless to a joiner, keep the last full one
            groups = self._hellos.setdefault(msg.vlan_id, OrderedDict())
            self._hellos.move_to_end(msg.vlan_id)
            groups[hello.group] = (now, packet)
            groups.move_to_end(hello.group)
            while len(groups) > MAX_GROUPS:
                groups.popitem(last=False)
            while len(self._hellos) > MAX_VLANS:
                self._hellos.popitem(last=False)
            return []
        key = (peer, msg.vlan_id)
        if now - self._answered.get(key, float("-inf")) < ANSWER_GAP_S:
            return []
        if len(self._answered) >= MAX_VLANS:
            self._answered.clear()
        self._answered[key] = now
        groups = self._hellos.get(msg.vlan_id, OrderedDict())
        return [p for at, p in groups.values() if now - at < self.max_age_s]

    def fresh(self, limit: int = 256) -> list[bytes]:
        """Recent group HELLOs of every VLAN, the most recently heard first: for a trunk that
        just came up, so that the groups on both sides learn of each other at once."""
        now = self._clock()
        out = [
            p
            for groups in reversed(self._hellos.values())
            for at, p in reversed(groups.values())
            if now - at < self.max_age_s
        ]
        return out[:limit]
