"""Bodies of CONTROL packets on the management VLAN (docs/protocol.md, "Management VLAN").

    HELLO       group tag (16) | epoch (u64) | MLS-ID (16) | members (u32) | credential,
                or 00 | credential digest (16) (credential_book.py)
    KEYPACKAGE  target group tag (16) | MLSMessage(KeyPackage)
    COMMIT      group tag (16) | epoch the commit applies to (u64) | MLSMessage(PublicMessage)
    WELCOME     group tag (16) | epoch it welcomes into (u64) | MLSMessage(Welcome)
    PROPOSAL    group tag (16) | epoch it applies to (u64) | MLSMessage(PublicMessage)
    MACPROBE    group tag (16) | epoch (u64) | MLSMessage(PrivateMessage: macprobe.py)
    PART        message id (16) | kind (u8) | index (u16) | count (u16) | data (chunks.py)
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
REVOCATION = 16
KINDS = {
    HELLO: "hello",
    KEYPACKAGE: "keypackage",
    COMMIT: "commit",
    WELCOME: "welcome",
    PROPOSAL: "proposal",
    MACPROBE: "macprobe",
    PART: "part",
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
        if kind not in KINDS or kind == PART:
            raise MalformedControl(f"PART of a message of kind {kind}")
        if not index < count:
            raise MalformedControl(f"PART {index} of {count}")
        return cls(mid, kind, index, count, body[_PART.size :])
