"""Member credentials: signed by the authority, bound to member, VLAN and time."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from peertap.operator import credentials
from peertap.sidecar import identity

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
AUTH = identity.Identity(Ed25519PrivateKey.from_private_bytes(b"\x01" * 32))
OTHER = identity.Identity(Ed25519PrivateKey.from_private_bytes(b"\x02" * 32))
ARGS = {"member_identity": "ns/p", "member_key_hex": "ab" * 32, "vlan_id": "cd" * 16}


def _issue() -> str:
    return credentials.issue(authority=AUTH, now=NOW, **ARGS)


def test_issued_credential_verifies_and_carries_the_binding() -> None:
    payload = credentials.verify(_issue(), authority_hex=AUTH.public_hex)
    assert payload == {
        "version": 1,
        "identity": "ns/p",
        "member_key": "ab" * 32,
        "vlan_id": "cd" * 16,
        "issued": "2026-01-01T00:00:00Z",
        "expires": "2026-01-31T00:00:00Z",
    }


def test_tampered_payload_fails_verification() -> None:
    doc = json.loads(_issue())
    doc["payload"]["vlan_id"] = "ee" * 16
    with pytest.raises(credentials.CredentialError, match="does not verify"):
        credentials.verify(json.dumps(doc), authority_hex=AUTH.public_hex)


def test_credential_from_another_authority_is_rejected() -> None:
    with pytest.raises(credentials.CredentialError, match="another authority"):
        credentials.verify(_issue(), authority_hex=OTHER.public_hex)


def test_malformed_credential_is_rejected() -> None:
    with pytest.raises(credentials.CredentialError, match="malformed"):
        credentials.verify("{}", authority_hex=AUTH.public_hex)


@pytest.mark.parametrize(
    ("change", "renew"),
    [
        ({}, False),
        ({"member_identity": "ns/q"}, True),
        ({"member_key_hex": "00" * 32}, True),
        ({"vlan_id": "00" * 16}, True),
        ({"now": NOW + dt.timedelta(days=21)}, True),
        ({"now": NOW + dt.timedelta(days=19)}, False),
    ],
)
def test_needs_renewal(change: dict[str, object], renew: bool) -> None:
    kwargs: dict[str, object] = {**ARGS, "now": NOW, **change}
    assert (
        credentials.needs_renewal(_issue(), authority_hex=AUTH.public_hex, **kwargs)  # type: ignore[arg-type]
        is renew
    )
    assert credentials.needs_renewal(None, authority_hex=AUTH.public_hex, **kwargs)  # type: ignore[arg-type]
