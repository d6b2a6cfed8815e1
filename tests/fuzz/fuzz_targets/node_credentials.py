"""Node credentials: `admission.decode`, `admission.verify` and `credential.from_text`
on arbitrary bytes.

Seeds are credentials issued by the admission authority (for two nodes, one by another
authority). Asserts that decoding returns a credential or raises a CredentialError,
that a decoded credential encodes back to the same bytes and survives its text
armour, and that `verify` accepts only a credential signed by the admitted authority
and valid at the time given.
"""

from __future__ import annotations

from peertap.sidecar import admission
from peertap.sidecar.admission import credential
from peertap.sidecar.private import authority

from . import world

NAME = "node_credentials"
_AUTHORITIES = frozenset({world.AUTHORITY.public_bytes})
_NOW = world.NOW.timestamp()


def seeds() -> list[bytes]:
    a, b = world.node(1), world.node(2)
    armoured = credential.to_text(admission.decode(world.node_credential(b, "b"))).encode()
    return [
        armoured,
        world.node_credential(a, "cluster-a/default/web-0"),
        world.node_credential(b, "b\u00e9"),
        world.node_credential(a, "other", signer=world.node(7)),
    ]


def check(data: bytes) -> None:
    try:
        armoured = credential.from_text(data.decode("latin-1"))
    except authority.CredentialError:
        pass
    else:
        assert admission.decode(armoured.encode()) == armoured
    try:
        cred = admission.decode(data)
    except authority.CredentialError:
        return
    assert cred.encode() == data, "decode(encode(x)) differs"
    assert credential.from_text(credential.to_text(cred)) == cred
    try:
        admission.verify(cred, authorities=_AUTHORITIES, now=_NOW, skew_s=60.0)
    except authority.CredentialError:
        return
    assert cred.authority == world.AUTHORITY.public_bytes
    assert cred.not_before - 60 <= _NOW < cred.not_after + 60
