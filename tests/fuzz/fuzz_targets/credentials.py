"""Member credentials: `authority.parse` and `authority.verify` on arbitrary bytes.

Seeds are credentials the authority issues (valid, expired, for another VLAN).
Asserts that both return a credential or raise a CredentialError, that a parsed
credential survives encode/parse unchanged (when its encoding, where JSON escapes
every non-ASCII character, is within MAX_CREDENTIAL_BYTES; `issue` refuses one that
is not), and that a credential `verify` accepts
is signed by the VLAN's authority for this VLAN and valid at the time given.
"""

from __future__ import annotations

import datetime as dt

from peertap.sidecar.private import authority

from . import world

NAME = "credentials"


def seeds() -> list[bytes]:
    a = world.node(1)
    expired = authority.issue(
        authority=world.AUTHORITY,
        member_identity="old",
        member_key=a.public_bytes,
        vlan_id=world.VLAN_ID,
        issued=world.ISSUED - dt.timedelta(days=30),
        expires=world.ISSUED,
    )
    other = authority.issue(
        authority=world.AUTHORITY,
        member_identity="other vlan \u00e9",
        member_key=a.public_bytes,
        vlan_id=bytes(16),
        issued=world.ISSUED,
        expires=world.EXPIRES,
    )
    return [
        world.credential(a, "a"),
        world.credential(world.node(2), "b" * 40),
        expired.encode(),
        other.encode(),
    ]


def check(data: bytes) -> None:
    try:
        cred = authority.parse(data)
    except authority.CredentialError:
        cred = None
    else:
        encoded = cred.encode()
        if len(encoded) <= authority.MAX_CREDENTIAL_BYTES:
            assert authority.parse(encoded) == cred, "parse(encode(x)) differs"
    try:
        valid = authority.verify(
            data, authority=world.AUTHORITY.public_bytes, vlan_id=world.VLAN_ID, now=world.NOW
        )
    except authority.CredentialError:
        return
    assert valid == cred
    assert valid.authority == world.AUTHORITY.public_bytes
    assert valid.vlan_id == world.VLAN_ID
    assert valid.issued <= world.NOW < valid.expires
