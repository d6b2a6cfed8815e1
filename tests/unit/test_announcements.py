"""Signed announcements: a neighbour cannot withdraw, replace or hijack another origin's
routes; copies verify once; stale, future and flooding announcements are refused."""

from __future__ import annotations

import dataclasses

from peertap.sidecar import identity, stamps, wire
from peertap.sidecar.announcements import AnnounceIntake, IntakeLimits, OwnAnnouncer
from peertap.sidecar.counters import Counters
from peertap.sidecar.switch.routes import RouteTable

VLAN = b"\x11" * 16
ORIGIN = identity.generate()
ATTACKER = identity.generate()
TOKENS = (b"a" * 16, b"b" * 16)


def intake(**limits: float) -> AnnounceIntake:
    values = dict(max_age_s=35, skew_s=60, per_trunk_per_s=1000, per_origin_per_s=100)
    values.update(limits)
    return AnnounceIntake(
        routes=RouteTable(ttl_s=35),
        own_key=b"\x00" * 32,
        limits=IntakeLimits(**values),
        counters=Counters(),
    )


def take(i: AnnounceIntake, ann: wire.Announce, *, peer: str = "origin", key: bytes = b""):
    return i.take(
        peer, ann.encode(), peer_key=key or ORIGIN.public_bytes, accept_vlan=lambda v: True
    )


def test_an_origins_own_announcement_is_learned() -> None:
    i = intake()
    assert take(i, OwnAnnouncer(ORIGIN, hop_limit=8).make(VLAN, TOKENS)) is not None
    assert i.routes.next_hops(VLAN, TOKENS[0]) == ("origin",)


def test_a_forged_withdrawal_with_the_victims_origin_changes_nothing() -> None:
    i = intake()
    genuine = OwnAnnouncer(ORIGIN, hop_limit=8).make(VLAN, TOKENS)
    take(i, genuine)
    forged = dataclasses.replace(genuine, sequence=2**63, tokens=(), distance=1)
    assert take(i, forged, peer="x", key=ATTACKER.public_bytes) is None
    forged_now = dataclasses.replace(genuine, sequence=stamps.now_us(), tokens=(), distance=1)
    assert take(i, forged_now, peer="x", key=ATTACKER.public_bytes) is None
    assert i.routes.next_hops(VLAN, TOKENS[0]) == ("origin",)
    assert i.counters.drops["announce_signature"] == 1
    assert i.counters.drops["announce_future"] == 1


def test_a_neighbour_replaying_a_genuine_announcement_cannot_pose_as_its_origin() -> None:
    i = intake()
    genuine = OwnAnnouncer(ORIGIN, hop_limit=8).make(VLAN, TOKENS)
    take(i, genuine)
    assert take(i, genuine, peer="x", key=ATTACKER.public_bytes) is None
    assert i.counters.drops["announce_distance"] == 1
    # One hop further it is a longer path, which does not win over the direct one.
    assert take(i, dataclasses.replace(genuine, distance=1), peer="x", key=ATTACKER.public_bytes)
    assert i.routes.next_hops(VLAN, TOKENS[0]) == ("origin",)


def test_copies_of_a_verified_announcement_are_not_verified_again() -> None:
    i = intake(per_origin_per_s=0.001)
    genuine = OwnAnnouncer(ORIGIN, hop_limit=8).make(VLAN, TOKENS)
    assert take(i, genuine)
    # The origin's budget is spent, but a copy over another path costs none of it.
    relayed = dataclasses.replace(genuine, distance=1)
    assert take(i, relayed, peer="r", key=ATTACKER.public_bytes)
    assert i.counters.drops["announce_rate_origin"] == 0


def test_old_and_stale_announcements_are_refused() -> None:
    i = intake()
    announcer = OwnAnnouncer(ORIGIN, hop_limit=8)
    old = announcer.make(VLAN, (b"o" * 16,))
    new = announcer.make(VLAN, TOKENS)
    take(i, new)
    assert take(i, old) is None
    assert not i.routes.wanted(VLAN, b"o" * 16)
    stale = dataclasses.replace(new, sequence=stamps.now_us() - 200 * stamps.US)
    unsigned = dataclasses.replace(stale, signature=ORIGIN.private_key.sign(stale.signed_part()))
    assert take(i, unsigned) is None
    assert i.counters.drops["announce_stale"] == 1


def test_a_flooding_neighbour_is_limited_per_trunk() -> None:
    i = intake(per_trunk_per_s=5)
    for _ in range(30):
        take(i, OwnAnnouncer(identity.generate(), hop_limit=8).make(VLAN, TOKENS), peer="x")
    assert i.counters.drops["announce_rate_trunk"] == 20
