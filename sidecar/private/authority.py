"""VLAN authority: member credentials for private VLANs (security "mls").

The authority is an Ed25519 key; its public key is the VLAN's `creator`, so the
VLAN-ID itself names who may admit members. A credential binds a member
identity (a free-form name), the member's Ed25519 public key (its node key, the
one `peertap keygen` prints), one VLAN-ID and a validity window:

    {"payload": {"version": 1, "identity": "<name>",
                 "member_key": "<64 hex>", "vlan_id": "<32 hex>",
                 "issued": "<RFC 3339 UTC>", "expires": "<RFC 3339 UTC>"},
     "authority": "<64 hex: the authority public key>",
     "signature": "<128 hex: Ed25519 over CONTEXT || canonical payload>"}

The canonical payload is JSON with sorted keys and no whitespace; CONTEXT is
b"peertap-credential-v1\\x00", so a credential signature cannot be replayed as
any other message signed by the authority. This is the format the operator
writes too (`peertap.operator.credentials`); this module is the reference.

Inside MLS the credential travels as the identity of a BasicCredential; the
leaf's signature key must equal `member_key`, so only the key holder can use it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .. import ids
from ..identity import Identity

CONTEXT = b"peertap-credential-v1\x00"
VERSION = 1
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_CREDENTIAL_BYTES = 4096
_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


class CredentialError(Exception):
    """A member credential is unusable; subclasses name why."""

    reason = "credential"


class MalformedCredential(CredentialError):
    reason = "malformed"


class WrongAuthority(CredentialError):
    reason = "wrong_authority"


class BadSignature(CredentialError):
    reason = "bad_signature"


class WrongVlan(CredentialError):
    reason = "wrong_vlan"


class CredentialExpired(CredentialError):
    reason = "expired"


class CredentialNotYetValid(CredentialError):
    reason = "not_yet_valid"


class WrongMemberKey(CredentialError):
    reason = "wrong_member_key"


class MemberRevoked(CredentialError):
    """The member key is on the VLAN's revocation list (revocation.py)."""

    reason = "revoked"


@dataclass(frozen=True)
class MemberCredential:
    """A parsed credential (signature not implied: see `verify`)."""

    identity: str
    member_key: bytes
    vlan_id: bytes
    issued: dt.datetime
    expires: dt.datetime
    authority: bytes
    signature: bytes

    def payload(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "identity": self.identity,
            "member_key": self.member_key.hex(),
            "vlan_id": self.vlan_id.hex(),
            "issued": format_time(self.issued),
            "expires": format_time(self.expires),
        }

    def encode(self) -> bytes:
        """Compact JSON bytes (what travels inside MLS and what `--out` files hold)."""
        doc = {
            "payload": self.payload(),
            "authority": self.authority.hex(),
            "signature": self.signature.hex(),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def format_time(t: dt.datetime) -> str:
    # Not strftime: it writes years before 1000 without their leading zeros, which
    # `_parse_time` (and so the signature check) would not read back.
    u = t.astimezone(dt.UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


def _parse_time(text: object, name: str) -> dt.datetime:
    if not isinstance(text, str):
        raise MalformedCredential(f"credential {name} is not a string")
    try:
        return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError as err:
        raise MalformedCredential(f"credential {name} {text!r} is not RFC 3339 UTC") from err


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def parse_duration(text: str) -> dt.timedelta:
    """'90s', '15m', '24h', '30d' -> timedelta; ValueError otherwise."""
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"duration {text!r} must be a positive number with s, m, h or d")
    return dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def issue(
    *,
    authority: Identity,
    member_identity: str,
    member_key: bytes,
    vlan_id: bytes,
    issued: dt.datetime,
    expires: dt.datetime,
) -> MemberCredential:
    """Sign a credential for `member_key` on `vlan_id`, valid from `issued` until `expires`."""
    if len(member_key) != 32:
        raise ValueError("member key must be a 32-byte Ed25519 public key")
    if len(vlan_id) != ids.VLAN_ID_LEN:
        raise ValueError("VLAN-ID must be 16 bytes")
    if expires <= issued:
        raise ValueError("a credential must expire after it is issued")
    # Whole seconds: the text form has no fractions, and the signature covers the text.
    issued = issued.astimezone(dt.UTC).replace(microsecond=0)
    expires = expires.astimezone(dt.UTC).replace(microsecond=0)
    unsigned = MemberCredential(
        member_identity, member_key, vlan_id, issued, expires, authority.public_bytes, b""
    )
    signature = authority.private_key.sign(CONTEXT + canonical(unsigned.payload()))
    cred = MemberCredential(
        member_identity, member_key, vlan_id, issued, expires, authority.public_bytes, signature
    )
    # JSON escapes every non-ASCII character (6 bytes each), so a long identity can make
    # a credential that `parse` would refuse: say so now, not at every member.
    size = len(cred.encode())
    if size > MAX_CREDENTIAL_BYTES:
        raise ValueError(f"credential of {size} bytes is over {MAX_CREDENTIAL_BYTES}")
    return cred


def parse(data: bytes | str) -> MemberCredential:
    """Decode a credential document without checking its signature or validity."""
    if len(data) > MAX_CREDENTIAL_BYTES:
        raise MalformedCredential(f"credential of {len(data)} bytes is too long")
    try:
        doc = json.loads(data)
        payload = doc["payload"]
        authority = doc["authority"]
        signature = bytes.fromhex(doc["signature"])
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        # RecursionError: JSON nested deeper than the decoder's stack allows ("[[[[...").
        raise MalformedCredential(f"credential is not a signed document: {err}") from err
    version = payload.get("version") if isinstance(payload, dict) else None
    if type(version) is not int or version != VERSION:
        raise MalformedCredential("credential payload is not a version-1 object")
    fields = (payload.get("member_key"), payload.get("vlan_id"), authority)
    if not (
        isinstance(fields[0], str)
        and _HEX64.fullmatch(fields[0])
        and isinstance(fields[1], str)
        and _HEX32.fullmatch(fields[1])
        and isinstance(fields[2], str)
        and _HEX64.fullmatch(fields[2])
    ):
        raise MalformedCredential("credential member_key, vlan_id or authority is not hex")
    name = payload.get("identity")
    if not isinstance(name, str) or not name:
        raise MalformedCredential("credential identity is missing")
    return MemberCredential(
        identity=name,
        member_key=bytes.fromhex(fields[0]),
        vlan_id=bytes.fromhex(fields[1]),
        issued=_parse_time(payload.get("issued"), "issued"),
        expires=_parse_time(payload.get("expires"), "expires"),
        authority=bytes.fromhex(fields[2]),
        signature=signature,
    )


def verify(
    data: bytes | str,
    *,
    authority: bytes,
    vlan_id: bytes,
    now: dt.datetime,
    member_key: bytes | None = None,
) -> MemberCredential:
    """The credential if it is signed by `authority`, for `vlan_id`, valid at `now`
    and (when given) for `member_key`; a CredentialError subclass otherwise."""
    cred = parse(data)
    if cred.authority != authority:
        raise WrongAuthority(
            f"credential is signed by {cred.authority.hex()[:16]}…, "
            f"the VLAN's authority is {authority.hex()[:16]}…"
        )
    try:
        Ed25519PublicKey.from_public_bytes(authority).verify(
            cred.signature, CONTEXT + canonical(cred.payload())
        )
    except (InvalidSignature, ValueError) as err:
        raise BadSignature("credential signature does not verify") from err
    if cred.vlan_id != vlan_id:
        raise WrongVlan(f"credential is for VLAN {cred.vlan_id.hex()}, not {vlan_id.hex()}")
    if now >= cred.expires:
        raise CredentialExpired(
            f"credential of {cred.identity} expired {format_time(cred.expires)}"
        )
    if now < cred.issued:
        raise CredentialNotYetValid(
            f"credential of {cred.identity} is valid from {format_time(cred.issued)}"
        )
    if member_key is not None and cred.member_key != member_key:
        raise WrongMemberKey(f"credential of {cred.identity} is for another member key")
    return cred
