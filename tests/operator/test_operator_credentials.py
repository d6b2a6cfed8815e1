"""When the operator issues and renews member credentials (peertap.sidecar.private.authority)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peertap.operator import credentials
from peertap.sidecar import identity
from peertap.sidecar.private import authority

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
AUTH = identity.Identity(Ed25519PrivateKey.from_private_bytes(b"\x01" * 32))
OTHER = identity.Identity(Ed25519PrivateKey.from_private_bytes(b"\x02" * 32))
MEMBER = "ab" * 32
VLAN = "cd" * 16


def _issue() -> str:
    return credentials.issue(
        authority_key=AUTH, member_identity="ns/p", member_key_hex=MEMBER, vlan_id=VLAN, now=NOW
    )


def test_issued_credential_verifies_with_the_sidecar_and_carries_the_binding() -> None:
    cred = authority.verify(
        _issue(),
        authority=AUTH.public_bytes,
        vlan_id=bytes.fromhex(VLAN),
        now=NOW,
        member_key=bytes.fromhex(MEMBER),
    )
    assert cred.identity == "ns/p"
    assert cred.expires - cred.issued == credentials.VALIDITY


def test_tampered_or_foreign_credentials_fail_verification() -> None:
    doc = json.loads(_issue())
    doc["payload"]["identity"] = "ns/q"
    with pytest.raises(credentials.CredentialError):
        credentials.verify(json.dumps(doc), authority_hex=AUTH.public_hex, vlan_id=VLAN, now=NOW)
    with pytest.raises(credentials.CredentialError):
        credentials.verify(_issue(), authority_hex=OTHER.public_hex, vlan_id=VLAN, now=NOW)


@pytest.mark.parametrize(
    ("change", "renew"),
    [
        ({}, False),
        ({"member_identity": "ns/q"}, True),
        ({"member_key_hex": "00" * 32}, True),
        ({"vlan_id": "00" * 16}, True),
        ({"authority_hex": OTHER.public_hex}, True),
        ({"now": NOW + dt.timedelta(hours=7)}, False),
        ({"now": NOW + dt.timedelta(hours=9)}, True),
        ({"now": NOW + dt.timedelta(hours=13)}, True),
    ],
)
def test_needs_renewal(change: dict[str, object], renew: bool) -> None:
    kwargs: dict[str, object] = {
        "authority_hex": AUTH.public_hex,
        "member_identity": "ns/p",
        "member_key_hex": MEMBER,
        "vlan_id": VLAN,
        "now": NOW,
        **change,
    }
    assert credentials.needs_renewal(_issue(), **kwargs) is renew  # type: ignore[arg-type]
    assert credentials.needs_renewal(None, **kwargs) is True  # type: ignore[arg-type]
