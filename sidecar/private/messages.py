"""Bodies of CONTROL packets on the management VLAN (docs/protocol.md, "Management VLAN").

    HELLO       group tag (16) | epoch (u64) | MLS-ID (16) | members (u32) | credential
    KEYPACKAGE  target group tag (16) | MLSMessage(KeyPackage)
    COMMIT      group tag (16) | epoch the commit applies to (u64) | MLSMessage(PublicMessage)
    WELCOME     group tag (16) | epoch it welcomes into (u64) | MLSMessage(Welcome)
    PROPOSAL    group tag (16) | epoch it applies to (u64) | MLSMessage(PublicMessage)
    MACPROBE    group tag (16) | epoch (u64) | MLSMessage(PrivateMessage: mvlan_macprobe.py)
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
REVOCATION = 16
KINDS = {
    HELLO: "hello",
    KEYPACKAGE: "keypackage",
    COMMIT: "commit",
    WELCOME: "welcome",
    PROPOSAL: "proposal",
    MACPROBE: "macprobe",
    REVOCATION: "revocation",
}

TAG_LEN = 16
NO_GROUP = bytes(TAG_LEN)
_HELLO = struct.Struct(">16sQ16sI")
_EPOCH_MSG = struct.Struct(">16sQ")


class MalformedControl(ValueError):
    """A CONTROL body that does not follow its kind's format."""


def group_tag(group_id: bytes) -> bytes:
    return blake3.blake3(group_id).digest(TAG_LEN)


@dataclass(frozen=True)
class Hello:
    group: bytes
    epoch: int
    mls_id: bytes
    members: int
    credential: bytes

    def encode(self) -> bytes:
        return _HELLO.pack(self.group, self.epoch, self.mls_id, self.members) + self.credential

    @classmethod
    def decode(cls, body: bytes) -> Hello:
        if len(body) <= _HELLO.size:
            raise MalformedControl(f"HELLO of {len(body)} bytes")
        group, epoch, mls_id, members = _HELLO.unpack_from(body)
        return cls(group, epoch, mls_id, members, body[_HELLO.size :])


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
