"""Trunk admission: `wire.decode_intro` and `admission.Admission.decide` on a peer's INTRO.

The deciding node admits by credential (mode "credential", one authority); the peer is
node 1. Seeds are INTROs carrying its credential, another node's, one by another
authority, and none. Asserts that decoding returns an Intro or raises MalformedPacket,
that `decide` always returns a Verdict (never raises), and that it admits only when
one of the INTRO's credentials is for the peer's own key, signed by the authority and
valid now.
"""

from __future__ import annotations

from peertap.sidecar import admission, wire
from peertap.sidecar.private import authority

from . import world

NAME = "intro_admission"
_PEER = world.node(1)
_AUTHORITIES = frozenset({world.AUTHORITY.public_bytes})
_NOW = world.NOW.timestamp()


def seeds() -> list[bytes]:
    own = world.node_credential(_PEER, "a")
    other = world.node_credential(world.node(2), "b")
    foreign = world.node_credential(_PEER, "a", signer=world.node(7))
    return [
        wire.Intro(2, 2, 0, (own,)).encode(),
        wire.Intro(1, 2, wire.ROLE_RELAY, (other, foreign, own)).encode(),
        wire.Intro(2, 2, 0, (other, foreign)).encode(),
        wire.Intro().encode(),
    ]


def _admits(cred_bytes: bytes) -> bool:
    try:
        cred = admission.decode(cred_bytes)
        admission.verify(
            cred, authorities=_AUTHORITIES, now=_NOW, skew_s=60.0, node_key=_PEER.public_bytes
        )
    except authority.CredentialError:
        return False
    return True


def check(data: bytes) -> None:
    try:
        intro = wire.decode_intro(data)
    except wire.MalformedPacket:
        return
    policy = admission.Admission(
        mode="credential", authorities=_AUTHORITIES, skew_s=60.0, wall=lambda: _NOW
    )
    verdict = policy.decide(_PEER.peer_id, intro)
    assert isinstance(verdict, admission.Verdict)
    assert verdict.admitted == any(_admits(c) for c in intro.credentials)
    assert verdict.admitted or verdict.reason
