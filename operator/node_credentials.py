"""Node credentials for trunk admission: which ones a node holds and when they are renewed.

The format is the sidecar's (`peertap.sidecar.admission`: a VLAN authority vouches
for a node key; files hold it between BEGIN/END PEERTAP NODE CREDENTIAL lines).
The operator gives every member pod one node credential per CryptoVLAN it is a
member of, and every MVLAN relay one per CryptoVLAN referencing the MVLAN, each
signed by that VLAN's authority, with the member credentials' policy: valid for
`credentials.VALIDITY` (from BACKDATE before issue, for clock skew), renewed when
less than `credentials.RENEW_BEFORE` is left or when the node key, the authority or
the identity changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from peertap.sidecar import admission, identity
from peertap.sidecar.admission.credential import from_text
from peertap.sidecar.private import authority

from .credentials import RENEW_BEFORE, VALIDITY

SUFFIX = ".node.cred"
# Valid from a little before issue, so peers whose clocks lag admit a fresh credential.
BACKDATE = dt.timedelta(minutes=5)


def file_name(vlan_name: str) -> str:
    """The file (Secret key) holding a node's credential from CryptoVLAN `vlan_name`."""
    return f"{vlan_name}{SUFFIX}"


def is_node_credential(file: str) -> bool:
    return file.endswith(SUFFIX)


def issue(
    *, authority_key: identity.Identity, node_key: bytes, node_identity: str, now: dt.datetime
) -> str:
    """A fresh credential text, valid from BACKDATE before `now` until VALIDITY after it."""
    cred = admission.issue(
        authority=authority_key,
        node_key=node_key,
        identity=node_identity,
        not_before=now - BACKDATE,
        not_after=now + VALIDITY,
    )
    return admission.to_text(cred)


def needs_renewal(
    text: str | None,
    *,
    authority_hex: str,
    node_key: bytes,
    node_identity: str,
    now: dt.datetime,
) -> bool:
    """True when the credential is missing, invalid, signed by another authority, for
    another node key or identity, or has less than RENEW_BEFORE left."""
    if text is None:
        return True
    try:
        cred = from_text(text)
        admission.verify(
            cred,
            authorities=frozenset({bytes.fromhex(authority_hex)}),
            now=now.timestamp(),
            node_key=node_key,
        )
    except authority.CredentialError:
        return True
    if cred.identity != node_identity:
        return True
    return cred.not_after - now.timestamp() < RENEW_BEFORE.total_seconds()


def holdings(
    current: Mapping[str, str],
    *,
    authorities: Mapping[str, identity.Identity],
    node_key: bytes,
    node_identity: str,
    now: dt.datetime,
) -> dict[str, str]:
    """The node credential files a node should hold: one per VLAN in `authorities`
    (VLAN name -> its authority key), kept from `current` while still good."""
    out: dict[str, str] = {}
    for vlan, key in sorted(authorities.items()):
        name = file_name(vlan)
        text = current.get(name)
        if needs_renewal(
            text,
            authority_hex=key.public_hex,
            node_key=node_key,
            node_identity=node_identity,
            now=now,
        ):
            text = issue(authority_key=key, node_key=node_key, node_identity=node_identity, now=now)
        assert text is not None
        out[name] = text
    return out
