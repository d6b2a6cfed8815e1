"""Signed route announcements: making our own, and taking those of others.

Send:    tokens a port wants -> ANNOUNCE(origin = node key, sequence = stamp) -> sign
Receive: trunk rate limit -> decode -> distance 0 only from the origin itself ->
         freshness -> already verified? (same origin, VLAN, sequence and digest: a copy
         over another path) -> else verify the origin's signature -> origin rate limit
         -> route table

A node verifies each (origin, VLAN, sequence) once; copies over other paths cost a
hash. No peer can withdraw or replace another origin's routes: it would need that
origin's key. Every refusal is counted under `announce_<reason>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import stamps, wire
from .counters import Counters
from .freshness import in_window
from .identity import Identity
from .ratelimit import KeyedBuckets
from .switch.routes import Learned, RouteTable


def digest_of(ann: wire.Announce) -> bytes:
    """Names an announcement's signed content and signature (not distance or hop limit)."""
    return blake3.blake3(ann.signed_part() + ann.signature).digest(16)


def verify(ann: wire.Announce) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(ann.origin).verify(ann.signature, ann.signed_part())
    except (InvalidSignature, ValueError):
        return False
    return True


class OwnAnnouncer:
    """Signs this node's announcements; sequences are stamps, so they grow across restarts."""

    def __init__(self, node: Identity, *, hop_limit: int) -> None:
        self.node = node
        self.hop_limit = hop_limit
        self._stamps = stamps.Stamper()
        self._latest: dict[bytes, wire.Announce] = {}

    def latest(self, vlan_id: bytes, tokens: tuple[bytes, ...]) -> wire.Announce:
        """The announcement last made for these tokens (a new one if they changed).

        A new neighbour gets the copy every other neighbour already has, so the
        copies relays pass on carry one sequence and the receivers keep each path as
        an alternative, instead of the newest copy replacing the paths of the older.
        """
        last = self._latest.get(vlan_id)
        if last is not None and last.tokens == tokens[: wire.MAX_ANNOUNCE_ENTRIES]:
            return last
        return self.make(vlan_id, tokens)

    def make(self, vlan_id: bytes, tokens: tuple[bytes, ...]) -> wire.Announce:
        unsigned = wire.Announce(
            hop_limit=self.hop_limit,
            origin=self.node.public_bytes,
            vlan_id=vlan_id,
            sequence=self._stamps.next(),
            distance=0,
            tokens=tokens[: wire.MAX_ANNOUNCE_ENTRIES],
        )
        signed = replace(unsigned, signature=self.node.private_key.sign(unsigned.signed_part()))
        self._latest[vlan_id] = signed
        return signed


@dataclass(frozen=True)
class IntakeLimits:
    max_age_s: float  # the route TTL: relays re-send stored announcements up to that old
    skew_s: float
    per_trunk_per_s: float
    per_origin_per_s: float


class AnnounceIntake:
    def __init__(
        self,
        *,
        routes: RouteTable,
        own_key: bytes,
        limits: IntakeLimits,
        counters: Counters,
        wall_us: Callable[[], int] = stamps.now_us,
    ) -> None:
        self.routes = routes
        self.own_key = own_key
        self.limits = limits
        self.counters = counters
        self._wall_us = wall_us
        self._trunks = KeyedBuckets(
            rate=limits.per_trunk_per_s, burst=2 * limits.per_trunk_per_s, max_keys=4096
        )
        self._origins = KeyedBuckets(
            rate=limits.per_origin_per_s, burst=max(10.0, 5 * limits.per_origin_per_s)
        )

    def forget_peer(self, peer: str) -> None:
        self._trunks.forget(peer)

    def take(
        self,
        peer: str,
        packet: bytes,
        *,
        peer_key: bytes,
        accept_vlan: Callable[[bytes], bool],
    ) -> tuple[wire.Announce, Learned] | None:
        """Learn from one ANNOUNCE of neighbour `peer` (whose node key is `peer_key`); the
        announcement and the outcome, or None if it was refused (counted) or is not for
        a VLAN we take."""
        if not self._trunks.take(peer):
            return self._refused("rate_trunk")
        ann = wire.decode_announce(packet)
        self.counters.inc("announce_rx")
        if ann.origin == self.own_key or not accept_vlan(ann.vlan_id):
            return None
        if ann.distance == 0 and ann.origin != peer_key:
            # Only the origin itself is at distance 0: a neighbour replaying someone
            # else's genuine announcement cannot pose as that node's direct path.
            return self._refused("distance")
        limits = self.limits
        late = in_window(
            ann.sequence,
            now=self._wall_us(),
            max_age_us=int(limits.max_age_s * stamps.US),
            skew_us=int(limits.skew_s * stamps.US),
        )
        if late is not None:
            return self._refused(late)
        digest = digest_of(ann)
        known = self.routes.known(ann)
        if known is not None and ann.sequence < known[0]:
            return None  # an older copy still travelling: nothing to learn, nothing wrong
        if known != (ann.sequence, digest):
            if not verify(ann):
                return self._refused("signature")
            if not self._origins.take(ann.origin):
                return self._refused("rate_origin")
        learned = self.routes.learn(peer, ann, digest=digest)
        if learned.refused:
            return self._refused("table_full")
        if learned.replayed:
            return self._refused("replayed")
        return ann, learned

    def _refused(self, reason: str) -> tuple[wire.Announce, Learned] | None:
        self.counters.drop(f"announce_{reason}")
        return None
