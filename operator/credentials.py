"""Member credentials: JSON documents signed by the VLAN authority's Ed25519 key.

Format (version 1), the document private VLANs (security: mls) will verify:

    {"payload": {"version": 1, "identity": "<namespace>/<pod>",
                 "member_key": "<64 hex: the member's Ed25519 public key>",
                 "vlan_id": "<32 hex>", "issued": "<RFC 3339>", "expires": "<RFC 3339>"},
     "authority": "<64 hex: the authority public key>",
     "signature": "<128 hex: Ed25519 over CONTEXT || canonical payload>"}

The canonical payload is JSON with sorted keys and no whitespace; CONTEXT is
b"peertap-credential-v1\\x00", so a credential signature cannot be replayed as
any other signed message of the authority key.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from peertap.sidecar import identity

CONTEXT = b"peertap-credential-v1\x00"
VALIDITY = dt.timedelta(days=30)
RENEW_BEFORE = dt.timedelta(days=10)


class CredentialError(Exception):
    """A credential is malformed, signed by another key, or has a bad signature."""


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def _time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue(
    *,
    authority: identity.Identity,
    member_identity: str,
    member_key_hex: str,
    vlan_id: str,
    now: dt.datetime,
) -> str:
    payload = {
        "version": 1,
        "identity": member_identity,
        "member_key": member_key_hex,
        "vlan_id": vlan_id,
        "issued": _time(now),
        "expires": _time(now + VALIDITY),
    }
    signature = authority.private_key.sign(CONTEXT + _canonical(payload))
    doc = {"payload": payload, "authority": authority.public_hex, "signature": signature.hex()}
    return json.dumps(doc, sort_keys=True)


def verify(text: str, *, authority_hex: str) -> dict[str, Any]:
    """The payload of a credential signed by this authority; raises CredentialError otherwise."""
    try:
        doc = json.loads(text)
        payload = doc["payload"]
        signature = bytes.fromhex(doc["signature"])
        if doc["authority"] != authority_hex:
            raise CredentialError("credential is signed by another authority")
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(authority_hex))
        key.verify(signature, CONTEXT + _canonical(payload))
    except InvalidSignature as err:
        raise CredentialError("credential signature does not verify") from err
    except (ValueError, KeyError, TypeError) as err:
        raise CredentialError(f"credential is malformed: {err}") from err
    if not isinstance(payload, dict):
        raise CredentialError("credential payload is not an object")
    return payload


def needs_renewal(
    text: str | None,
    *,
    authority_hex: str,
    member_identity: str,
    member_key_hex: str,
    vlan_id: str,
    now: dt.datetime,
) -> bool:
    """True when the credential is missing, invalid, for another member/VLAN, or expiring soon."""
    if text is None:
        return True
    try:
        payload = verify(text, authority_hex=authority_hex)
        expires = dt.datetime.strptime(payload["expires"], "%Y-%m-%dT%H:%M:%SZ")
    except (CredentialError, KeyError, ValueError, TypeError):
        return True
    if (
        payload.get("identity") != member_identity
        or payload.get("member_key") != member_key_hex
        or payload.get("vlan_id") != vlan_id
    ):
        return True
    return expires.replace(tzinfo=dt.UTC) - now < RENEW_BEFORE
