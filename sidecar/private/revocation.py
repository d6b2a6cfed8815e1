"""Revocation lists: the VLAN authority's signed list of member keys no longer admitted.

A list names one private VLAN (by VLAN-ID) and carries a version; a later list
replaces an earlier one only if its version is higher, so a list that revokes more
keys must also name every key the earlier ones did (`peertap authority revoke`
does that when given the previous file). Binary, canonical, signed by the
authority's Ed25519 key (docs/protocol.md, "Revocation lists"):

    [0, 1)         version of the format (1)
    [1, 33)        authority: Ed25519 public key of the signer (the VLAN's creator)
    [33, 49)       VLAN-ID
    [49, 57)       list version (u64, big-endian, >= 1)
    [57, 61)       n: number of revoked keys (u32, big-endian, 0 .. MAX_REVOKED)
    [61, 61+32n)   revoked member keys (Ed25519 public keys), strictly ascending
    [61+32n, +64)  signature: Ed25519 over REVOCATION_CONTEXT || bytes [0, 61+32n)

Files hold it base64-armoured between BEGIN/END PEERTAP REVOCATION LIST lines; the
binary form travels in REVOCATION CONTROL packets on the MVLAN. Because the
authority signs it, any node may forward it. Every error is a RevocationError.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .. import ids
from ..identity import Identity

REVOCATION_CONTEXT = b"peertap revocation list v1\x00"
FORMAT_VERSION = 1
KEY_LEN = 32
SIGNATURE_LEN = 64
# 1,024 keys (33 KiB) fit one CONTROL packet with room to spare; members whose
# credentials simply expire need no entry, so lists stay short.
MAX_REVOKED = 1024
BEGIN = "-----BEGIN PEERTAP REVOCATION LIST-----"
END = "-----END PEERTAP REVOCATION LIST-----"
_HEAD = struct.Struct(">B32s16sQI")
MAX_LIST_BYTES = _HEAD.size + MAX_REVOKED * KEY_LEN + SIGNATURE_LEN


class RevocationError(ValueError):
    """A revocation list is malformed, for another VLAN or authority, or badly signed."""


@dataclass(frozen=True)
class RevocationList:
    """A verified list: `revoked` keys may no longer be members of the VLAN `label`."""

    version: int
    label: str
    vlan_id: bytes
    authority: bytes
    revoked: frozenset[bytes]
    data: bytes  # the signed binary form, as received (forwarded unchanged)


def sign_revocation_list(
    authority: Identity, label: str, member_keys: Iterable[bytes], version: int
) -> bytes:
    """The signed binary list revoking `member_keys` on VLAN (authority, label)."""
    keys = sorted(set(member_keys))
    if any(len(k) != KEY_LEN for k in keys):
        raise RevocationError("a revoked member key must be a 32-byte Ed25519 public key")
    if len(keys) > MAX_REVOKED:
        raise RevocationError(f"{len(keys)} revoked keys are more than {MAX_REVOKED}")
    if not 1 <= version < 2**64:
        raise RevocationError("a revocation list version must be 1 .. 2^64-1")
    vid = ids.vlan_id(authority.public_bytes, label)
    unsigned = _HEAD.pack(FORMAT_VERSION, authority.public_bytes, vid, version, len(keys))
    unsigned += b"".join(keys)
    return unsigned + authority.private_key.sign(REVOCATION_CONTEXT + unsigned)


def decode_unverified(data: bytes) -> tuple[bytes, bytes, int, list[bytes], bytes]:
    """(authority, VLAN-ID, version, keys, signature) of a well-formed list, unverified."""
    if len(data) < _HEAD.size + SIGNATURE_LEN:
        raise RevocationError(f"revocation list of {len(data)} bytes is too short")
    if len(data) > MAX_LIST_BYTES:
        raise RevocationError(f"revocation list of {len(data)} bytes is too long")
    fmt, auth, vid, version, n = _HEAD.unpack_from(data)
    if fmt != FORMAT_VERSION:
        raise RevocationError(f"revocation list format {fmt} is not {FORMAT_VERSION}")
    if n > MAX_REVOKED or len(data) != _HEAD.size + n * KEY_LEN + SIGNATURE_LEN:
        raise RevocationError("revocation list length does not match its key count")
    if version == 0:
        raise RevocationError("revocation list version 0 is not allowed")
    keys = [data[i : i + KEY_LEN] for i in range(_HEAD.size, _HEAD.size + n * KEY_LEN, KEY_LEN)]
    if any(a >= b for a, b in itertools.pairwise(keys)):
        raise RevocationError("revoked keys are not strictly ascending")
    return auth, vid, version, keys, data[-SIGNATURE_LEN:]


def load_revocation_list(data: bytes, authority_public_key: bytes, label: str) -> RevocationList:
    """Verify a list (binary, or the armoured text of a file) for VLAN (authority, label)."""
    if data.lstrip().startswith(BEGIN.encode()):
        data = from_text(data)
    auth, vid, version, keys, signature = decode_unverified(data)
    if auth != authority_public_key:
        raise RevocationError(
            f"revocation list is signed by {auth.hex()[:16]}…, "
            f"the VLAN's authority is {authority_public_key.hex()[:16]}…"
        )
    expected = ids.vlan_id(authority_public_key, label)
    if vid != expected:
        raise RevocationError(f"revocation list is for VLAN {vid.hex()}, not {expected.hex()}")
    try:
        Ed25519PublicKey.from_public_bytes(auth).verify(
            signature, REVOCATION_CONTEXT + data[:-SIGNATURE_LEN]
        )
    except (InvalidSignature, ValueError) as err:
        raise RevocationError("revocation list signature does not verify") from err
    return RevocationList(version, label, vid, auth, frozenset(keys), bytes(data))


def to_text(data: bytes) -> str:
    """The armoured text form of a binary list (what files hold)."""
    body = base64.b64encode(data).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def from_text(text: bytes | str) -> bytes:
    """The binary list inside an armoured text; RevocationError if it is not one."""
    try:
        s = text.decode("ascii") if isinstance(text, bytes) else text
    except UnicodeDecodeError as err:
        raise RevocationError("revocation list file is not ASCII text") from err
    lines = [x.strip() for x in s.strip().splitlines()]
    if len(lines) < 3 or lines[0] != BEGIN or lines[-1] != END:
        raise RevocationError("not a PEERTAP REVOCATION LIST block")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError) as err:
        raise RevocationError("revocation list is not base64") from err
