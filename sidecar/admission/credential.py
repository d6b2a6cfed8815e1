"""Node credentials: an authority vouches for a node key (docs/protocol.md, "Admission").

Binary, canonical, signed by the authority's Ed25519 key:

    0   1  version (1)
    1  32  node key (the node's Ed25519 public key, i.e. its libp2p identity)
    33 32  authority (Ed25519 public key of the signer)
    65  8  not before (u64, Unix seconds)
    73  8  not after (u64, Unix seconds)
    81  1  identity length n (1..255)
    82  n  identity (UTF-8, a free-form name such as "cluster-a/default/web-0")
    82+n 64 signature: Ed25519 over NODE_CREDENTIAL_CONTEXT || bytes 0 .. 82+n

Files hold it base64-armoured between BEGIN/END PEERTAP NODE CREDENTIAL lines. The
authority may be a private VLAN's authority (its `creator`) or any other key a node
lists in `admission.authorities`. Errors are authority.CredentialError subclasses, so
refusals are counted by the same reason labels as member credentials.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..identity import Identity, peer_id_from_public
from ..private import authority as creds

NODE_CREDENTIAL_CONTEXT = b"peertap/v2 node credential\x00"
VERSION = 1
SIGNATURE_LEN = 64
MAX_IDENTITY = 255
BEGIN = "-----BEGIN PEERTAP NODE CREDENTIAL-----"
END = "-----END PEERTAP NODE CREDENTIAL-----"
_HEAD = struct.Struct(">B32s32sQQB")


@dataclass(frozen=True)
class NodeCredential:
    node_key: bytes
    authority: bytes
    not_before: int
    not_after: int
    identity: str
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        name = self.identity.encode("utf-8")
        return (
            _HEAD.pack(
                VERSION, self.node_key, self.authority, self.not_before, self.not_after, len(name)
            )
            + name
        )

    def encode(self) -> bytes:
        return self.signed_bytes() + self.signature

    @property
    def peer_id(self) -> str:
        return peer_id_from_public(self.node_key)


def issue(
    *,
    authority: Identity,
    node_key: bytes,
    identity: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> NodeCredential:
    """Sign a node credential for `node_key`, valid from `not_before` until `not_after`."""
    if len(node_key) != 32:
        raise ValueError("node key must be a 32-byte Ed25519 public key")
    name = identity.encode("utf-8")
    if not 0 < len(name) <= MAX_IDENTITY:
        raise ValueError(f"identity must be 1..{MAX_IDENTITY} UTF-8 bytes")
    start, end = int(not_before.timestamp()), int(not_after.timestamp())
    if end <= start:
        raise ValueError("a credential must expire after it becomes valid")
    unsigned = NodeCredential(node_key, authority.public_bytes, start, end, identity)
    signature = authority.private_key.sign(NODE_CREDENTIAL_CONTEXT + unsigned.signed_bytes())
    return NodeCredential(node_key, authority.public_bytes, start, end, identity, signature)


def decode(data: bytes) -> NodeCredential:
    """Parse the binary form (no signature or validity check: see `verify`)."""
    if len(data) < _HEAD.size + 1 + SIGNATURE_LEN:
        raise creds.MalformedCredential(f"node credential of {len(data)} bytes is too short")
    version, node_key, auth, start, end, n = _HEAD.unpack_from(data)
    if version != VERSION:
        raise creds.MalformedCredential(f"node credential version {version} is not {VERSION}")
    if n == 0 or len(data) != _HEAD.size + n + SIGNATURE_LEN:
        raise creds.MalformedCredential("node credential length does not match its identity")
    try:
        name = data[_HEAD.size : _HEAD.size + n].decode("utf-8")
    except UnicodeDecodeError as err:
        raise creds.MalformedCredential("node credential identity is not UTF-8") from err
    if end <= start:
        raise creds.MalformedCredential("node credential expires before it becomes valid")
    return NodeCredential(node_key, auth, start, end, name, data[-SIGNATURE_LEN:])


def verify(
    cred: NodeCredential,
    *,
    authorities: frozenset[bytes],
    now: float,
    skew_s: float = 0.0,
    node_key: bytes | None = None,
) -> None:
    """Raise a CredentialError unless `cred` is signed by one of `authorities`, valid at
    `now` (give or take `skew_s` of clock difference) and, if given, for `node_key`."""
    if cred.authority not in authorities:
        raise creds.WrongAuthority(
            f"node credential of {cred.identity} is signed by {cred.authority.hex()[:16]}…, "
            "not by an admitted authority"
        )
    try:
        Ed25519PublicKey.from_public_bytes(cred.authority).verify(
            cred.signature, NODE_CREDENTIAL_CONTEXT + cred.signed_bytes()
        )
    except (InvalidSignature, ValueError) as err:
        raise creds.BadSignature("node credential signature does not verify") from err
    if now >= cred.not_after + skew_s:
        raise creds.CredentialExpired(f"node credential of {cred.identity} expired")
    if now < cred.not_before - skew_s:
        raise creds.CredentialNotYetValid(f"node credential of {cred.identity} is not valid yet")
    if node_key is not None and cred.node_key != node_key:
        raise creds.WrongMemberKey(f"node credential of {cred.identity} is for another node key")


def to_text(cred: NodeCredential) -> str:
    body = base64.b64encode(cred.encode()).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def from_text(text: str) -> NodeCredential:
    lines = [x.strip() for x in text.strip().splitlines()]
    if len(lines) < 3 or lines[0] != BEGIN or lines[-1] != END:
        raise creds.MalformedCredential("not a PEERTAP NODE CREDENTIAL block")
    try:
        data = base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError) as err:
        raise creds.MalformedCredential("node credential is not base64") from err
    return decode(data)


def read_file(path: Path) -> NodeCredential:
    """Load a credential file; OSError or CredentialError on failure."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as err:
        raise creds.MalformedCredential(f"{path} is not text") from err
    return from_text(text)
