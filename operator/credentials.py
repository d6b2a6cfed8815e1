"""Member credentials: when the operator issues or renews them (the format is the sidecar's).

The document and its signature are defined by `peertap.sidecar.private.authority`
(version 1: payload {version, identity, member_key, vlan_id, issued, expires},
the authority public key, and an Ed25519 signature over
b"peertap-credential-v1\\x00" || canonical payload). This module adds the
operator's policy: the identity is "<namespace>/<pod>", credentials are valid
for VALIDITY and renewed when less than RENEW_BEFORE is left.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from peertap.sidecar import identity
from peertap.sidecar.private import authority

# Short-lived (hours): a revoked or evicted member that escapes the revocation list
# still loses access when its credential runs out; the operator renews the credentials
# of current members at every reconcile once less than RENEW_BEFORE is left.
VALIDITY = dt.timedelta(hours=12)
RENEW_BEFORE = dt.timedelta(hours=4)

CredentialError = authority.CredentialError


def issue(
    *,
    authority_key: identity.Identity,
    member_identity: str,
    member_key_hex: str,
    vlan_id: str,
    now: dt.datetime,
) -> str:
    cred = authority.issue(
        authority=authority_key,
        member_identity=member_identity,
        member_key=bytes.fromhex(member_key_hex),
        vlan_id=bytes.fromhex(vlan_id),
        issued=now,
        expires=now + VALIDITY,
    )
    return cred.encode().decode()


def verify(text: str, *, authority_hex: str, vlan_id: str, now: dt.datetime) -> dict[str, Any]:
    """The payload of a credential this authority signed for this VLAN, valid at `now`."""
    cred = authority.verify(
        text, authority=bytes.fromhex(authority_hex), vlan_id=bytes.fromhex(vlan_id), now=now
    )
    return cred.payload()


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
        cred = authority.verify(
            text,
            authority=bytes.fromhex(authority_hex),
            vlan_id=bytes.fromhex(vlan_id),
            now=now,
            member_key=bytes.fromhex(member_key_hex),
        )
    except authority.CredentialError:
        return True
    if cred.identity != member_identity:
        return True
    return cred.expires - now < RENEW_BEFORE
