"""Bodies of CONTROL packets on the management VLAN (docs/protocol.md, "Management VLAN").

    HELLO       group tag (16) | epoch (u64) | MLS-ID (16) | members (u32) | credential,
                or 00 | credential digest (16) (credential_book.py)
    KEYPACKAGE  target group tag (16) | MLSMessage(KeyPackage)
    COMMIT      group tag (16) | epoch the commit applies to (u64) | MLSMessage(PublicMessage)
    WELCOME     group tag (16) | epoch it welcomes into (u64) | MLSMessage(Welcome)
    PROPOSAL    group tag (16) | epoch it applies to (u64) | MLSMessage(PublicMessage)
    MACPROBE    group tag (16) | epoch (u64) | MLSMessage(PrivateMessage: macprobe.py)
    PART        message id (16) | kind (u8) | index (u16) | count (u16) | data (chunks.py)
    DIRECTED    count (u8) | count node keys (32 each) | kind (u8: WELCOME or PART) | body
                (routes.py: relays send it only toward those nodes when they know the way)
    REVOCATION  the authority's signed revocation list (revocation.py), forwarded as is

A group tag is BLAKE3-128 of the MLS group id; all zeros means "no group".
Decoders raise MalformedControl, never anything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import blake3

HELLO = 1
KEYPACKAGE = 2
COMMIT = 3
WELCOME = 4
PROPOSAL = 5
MACPROBE = 6
PART = 7
DIRECTED = 8
REVOCATION = 16
KINDS = {
    HELLO: "hello",
    KEYPACKAGE: "keypackage",
    COMMIT: "commit",
    WELCOME: "welcome",
    PROPOSAL: "proposal",
    MACPROBE: "macprobe",
    PART: "part",
    DIRECTED: "directed",
    REVOCATION: "revocation",
}

TAG_LEN = 16
NO_GROUP = bytes(TAG_LEN)
_HELLO = struct.Struct(">16sQ16sI")
_EPOCH_MSG = struct.Struct(">16sQ")
_PART = struct.Struct(">16sBHH")
PART_HEADER_LEN = _PART.size
DIGEST_MARK = b"\x00"
DIGEST_LEN = 16
KEY_LEN = 32
MAX_DESTINATIONS = 64
# What a DIRECTED message may carry: a Welcome, whole or in PARTs.
DIRECTABLE = (WELCOME, PART)


class MalformedControl(ValueError):
    """A CONTROL body that does not follow its kind's format."""


def group_tag(group_id: bytes) -> bytes:
    return blake3.blake3(group_id).digest(TAG_LEN)


@dataclass(frozen=True)
class Hello:
    """A member's presence. It carries either its whole credential (`credential`) or,
    once receivers can have it, the credential's digest (`digest`, credential is empty).
    A credential document is JSON, so it never starts with the 00 byte that marks a digest."""

    group: bytes
    epoch: int
    mls_id: bytes
    members: int
    credential: bytes
    digest: bytes = b""

    def encode(self) -> bytes:
        head = _HELLO.pack(self.group, self.epoch, self.mls_id, self.members)
        if self.credential:
            return head + self.credential
        assert len(self.digest) == DIGEST_LEN
        return head + DIGEST_MARK + self.digest

    @classmethod
    def decode(cls, body: bytes) -> Hello:
        if len(body) <= _HELLO.size:
            raise MalformedControl(f"HELLO of {len(body)} bytes")
        group, epoch, mls_id, members = _HELLO.unpack_from(body)
        rest = body[_HELLO.size :]
        if rest[:1] != DIGEST_MARK:
            return cls(group, epoch, mls_id, members, rest)
        if len(rest) != 1 + DIGEST_LEN:
            raise MalformedControl(f"HELLO with a credential digest of {len(rest) - 1} bytes")
        return cls(group, epoch, mls_id, members, b"", rest[1:])


@dataclass(frozen=True)
class KeyPackageOffer:
    target: bytes
    message: bytes

    def encode(self) -> bytes:
        return self.target + self.message

    @classmethod
    def decode(cls, body: bytes) -> KeyPackageOffer:
        if len(body) <= TAG_LEN:
            raise MalformedControl(f"KEYPACKAGE of {len(body)} bytes")
        return cls(body[:TAG_LEN], body[TAG_LEN:])


@dataclass(frozen=True)
class EpochMessage:
    """COMMIT, WELCOME, PROPOSAL and MACPROBE: an MLS message for one group and epoch."""

    group: bytes
    epoch: int
    message: bytes

    def encode(self) -> bytes:
        return _EPOCH_MSG.pack(self.group, self.epoch) + self.message

    @classmethod
    def decode(cls, body: bytes) -> EpochMessage:
        if len(body) <= _EPOCH_MSG.size:
            raise MalformedControl(f"epoch message of {len(body)} bytes")
        group, epoch = _EPOCH_MSG.unpack_from(body)
        return cls(group, epoch, body[_EPOCH_MSG.size :])


def message_id(kind: int, body: bytes) -> bytes:
    """Names a whole CONTROL message split into PARTs: BLAKE3-128(kind || body)."""
    return blake3.blake3(bytes([kind]) + body).digest(TAG_LEN)


@dataclass(frozen=True)
class Part:
    """One piece of a CONTROL message too large for one packet (chunks.py)."""

    message_id: bytes
    kind: int  # the whole message's kind (never PART)
    index: int
    count: int
    data: bytes

    def encode(self) -> bytes:
        return _PART.pack(self.message_id, self.kind, self.index, self.count) + self.data

    @classmethod
    def decode(cls, body: bytes) -> Part:
        if len(body) <= _PART.size:
            raise MalformedControl(f"PART of {len(body)} bytes")
        mid, kind, index, count = _PART.unpack_from(body)
        if not HELLO <= kind <= MACPROBE:
            raise MalformedControl(f"PART of a message of kind {kind}")
        if not index < count:
            raise MalformedControl(f"PART {index} of {count}")
        return cls(mid, kind, index, count, body[_PART.size :])


def directed_overhead(destinations: int) -> int:
    """Bytes a DIRECTED wrapper adds to the body it carries."""
    return 2 + KEY_LEN * destinations


@dataclass(frozen=True)
class Directed:
    """A message for a few nodes (a Welcome for its joiners): relays that learned the
    trunk leading to each of them send it only there, others flood it (routes.py)."""

    destinations: tuple[bytes, ...]
    kind: int  # WELCOME or PART (of a WELCOME)
    body: bytes

    def encode(self) -> bytes:
        assert 1 <= len(self.destinations) <= MAX_DESTINATIONS
        assert all(len(d) == KEY_LEN for d in self.destinations)
        keys = b"".join(self.destinations)
        return bytes([len(self.destinations)]) + keys + bytes([self.kind]) + self.body

    @classmethod
    def decode(cls, body: bytes) -> Directed:
        if not body:
            raise MalformedControl("empty DIRECTED")
        count = body[0]
        if not 1 <= count <= MAX_DESTINATIONS:
            raise MalformedControl(f"DIRECTED to {count} nodes")
        end = 1 + KEY_LEN * count
        if len(body) <= end + 1:
            raise MalformedControl(f"DIRECTED of {len(body)} bytes to {count} nodes")
        kind = body[end]
        if kind not in DIRECTABLE:
            raise MalformedControl(f"DIRECTED {KINDS.get(kind, kind)}")
        keys = tuple(body[1 + KEY_LEN * i : 1 + KEY_LEN * (i + 1)] for i in range(count))
        return cls(keys, kind, body[end + 1 :])
