"""Message wire structs: Sender, FramedContent, FramedContentAuthData,
AuthenticatedContent, PublicMessage, PrivateMessage, SenderData and MLSMessage.

The signing, MAC and encryption around them is in ``framing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from .codec import Reader, Writer
from .errors import DecodeError, EncodeError
from .group_structs import (
    Commit,
    GroupInfo,
    Proposal,
    Welcome,
)
from .struct_base import (
    ContentType,
    ProtocolVersion,
    SenderType,
    Struct,
    WireFormat,
)
from .tree_structs import (
    KeyPackage,
)

__all__ = [
    "AuthenticatedContent",
    "Content",
    "FramedContent",
    "FramedContentAuthData",
    "MLSMessage",
    "MessageBody",
    "PrivateMessage",
    "PublicMessage",
    "Sender",
    "SenderData",
    "content_type_of",
    "read_content",
    "write_content",
]


# -- framing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sender(Struct):
    """``index`` is the leaf_index (member) or sender_index (external), else 0."""

    sender_type: int
    index: int = 0

    @classmethod
    def member(cls, leaf_index: int) -> Self:
        return cls(SenderType.MEMBER, leaf_index)

    def write(self, w: Writer) -> None:
        w.u8(self.sender_type)
        if self.sender_type in (SenderType.MEMBER, SenderType.EXTERNAL):
            w.u32(self.index)
        elif self.sender_type not in (SenderType.NEW_MEMBER_COMMIT, SenderType.NEW_MEMBER_PROPOSAL):
            raise EncodeError(f"unknown sender type {self.sender_type}")

    @classmethod
    def read(cls, r: Reader) -> Self:
        sender_type = r.u8()
        if sender_type in (SenderType.MEMBER, SenderType.EXTERNAL):
            return cls(sender_type, r.u32())
        if sender_type in (SenderType.NEW_MEMBER_COMMIT, SenderType.NEW_MEMBER_PROPOSAL):
            return cls(sender_type)
        raise DecodeError(f"unknown sender type {sender_type}")


Content = bytes | Proposal | Commit


def content_type_of(content: Content) -> int:
    if isinstance(content, bytes):
        return ContentType.APPLICATION
    if isinstance(content, Proposal):
        return ContentType.PROPOSAL
    return ContentType.COMMIT


def write_content(w: Writer, content: Content) -> None:
    """The ``select (content_type)`` part: application data, Proposal or Commit."""
    if isinstance(content, bytes):
        w.opaque(content)
    else:
        content.write(w)


def read_content(r: Reader, content_type: int) -> Content:
    if content_type == ContentType.APPLICATION:
        return r.opaque()
    if content_type == ContentType.PROPOSAL:
        return Proposal.read(r)
    if content_type == ContentType.COMMIT:
        return Commit.read(r)
    raise DecodeError(f"unknown content type {content_type}")


@dataclass(frozen=True)
class FramedContent(Struct):
    """``content`` is application data (bytes), a Proposal or a Commit."""

    group_id: bytes
    epoch: int
    sender: Sender
    authenticated_data: bytes
    content: Content

    @property
    def content_type(self) -> int:
        return content_type_of(self.content)

    def write(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        self.sender.write(w)
        w.opaque(self.authenticated_data)
        w.u8(self.content_type)
        write_content(w, self.content)

    @classmethod
    def read(cls, r: Reader) -> Self:
        group_id, epoch, sender, authenticated_data = (
            r.opaque(),
            r.u64(),
            Sender.read(r),
            r.opaque(),
        )
        return cls(group_id, epoch, sender, authenticated_data, read_content(r, r.u8()))


@dataclass(frozen=True)
class FramedContentAuthData(Struct):
    """``confirmation_tag`` is present iff the content is a Commit."""

    signature: bytes
    confirmation_tag: bytes | None = None

    def write(self, w: Writer) -> None:
        w.opaque(self.signature)
        if self.confirmation_tag is not None:
            w.opaque(self.confirmation_tag)

    @classmethod
    def read(cls, r: Reader) -> Self:
        raise TypeError("FramedContentAuthData.read needs the content type: use read_for")

    @classmethod
    def read_for(cls, r: Reader, content_type: int) -> Self:
        signature = r.opaque()
        return cls(signature, r.opaque() if content_type == ContentType.COMMIT else None)


@dataclass(frozen=True)
class AuthenticatedContent(Struct):
    wire_format: int
    content: FramedContent
    auth: FramedContentAuthData

    def write(self, w: Writer) -> None:
        w.u16(self.wire_format)
        self.content.write(w)
        self.auth.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        wire_format, content = r.u16(), FramedContent.read(r)
        return cls(wire_format, content, FramedContentAuthData.read_for(r, content.content_type))

    def confirmed_transcript_hash_input(self) -> bytes:
        """ConfirmedTranscriptHashInput: wire_format, content, signature."""
        w = Writer()
        w.u16(self.wire_format)
        self.content.write(w)
        w.opaque(self.auth.signature)
        return w.getvalue()


@dataclass(frozen=True)
class PublicMessage(Struct):
    """``membership_tag`` is present iff the sender is a member."""

    content: FramedContent
    auth: FramedContentAuthData
    membership_tag: bytes | None = None

    def write(self, w: Writer) -> None:
        self.content.write(w)
        self.auth.write(w)
        if self.content.sender.sender_type == SenderType.MEMBER:
            if self.membership_tag is None:
                raise EncodeError("member PublicMessage needs a membership_tag")
            w.opaque(self.membership_tag)

    @classmethod
    def read(cls, r: Reader) -> Self:
        content = FramedContent.read(r)
        auth = FramedContentAuthData.read_for(r, content.content_type)
        is_member = content.sender.sender_type == SenderType.MEMBER
        return cls(content, auth, r.opaque() if is_member else None)


@dataclass(frozen=True)
class PrivateMessage(Struct):
    group_id: bytes
    epoch: int
    content_type: int
    authenticated_data: bytes
    encrypted_sender_data: bytes
    ciphertext: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.u8(self.content_type)
        w.opaque(self.authenticated_data)
        w.opaque(self.encrypted_sender_data)
        w.opaque(self.ciphertext)

    @classmethod
    def read(cls, r: Reader) -> Self:
        group_id, epoch, content_type = r.opaque(), r.u64(), r.u8()
        if content_type not in (ContentType.APPLICATION, ContentType.PROPOSAL, ContentType.COMMIT):
            raise DecodeError(f"unknown content type {content_type}")
        return cls(group_id, epoch, content_type, r.opaque(), r.opaque(), r.opaque())


@dataclass(frozen=True)
class SenderData(Struct):
    leaf_index: int
    generation: int
    reuse_guard: bytes

    def write(self, w: Writer) -> None:
        if len(self.reuse_guard) != 4:
            raise EncodeError("reuse_guard must be 4 bytes")
        w.u32(self.leaf_index)
        w.u32(self.generation)
        w.raw(self.reuse_guard)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u32(), r.u32(), r.raw(4))


MessageBody = PublicMessage | PrivateMessage | Welcome | GroupInfo | KeyPackage

_WIRE_FORMATS: dict[type, int] = {
    PublicMessage: WireFormat.PUBLIC_MESSAGE,
    PrivateMessage: WireFormat.PRIVATE_MESSAGE,
    Welcome: WireFormat.WELCOME,
    GroupInfo: WireFormat.GROUP_INFO,
    KeyPackage: WireFormat.KEY_PACKAGE,
}
_BODY_TYPES: dict[int, type[MessageBody]] = {v: k for k, v in _WIRE_FORMATS.items()}


@dataclass(frozen=True)
class MLSMessage(Struct):
    """version, wire_format (from the body's class), then the body."""

    body: MessageBody
    version: int = ProtocolVersion.MLS10

    @property
    def wire_format(self) -> int:
        return _WIRE_FORMATS[type(self.body)]

    def write(self, w: Writer) -> None:
        w.u16(self.version)
        w.u16(self.wire_format)
        self.body.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        version, wire_format = r.u16(), r.u16()
        body_cls = _BODY_TYPES.get(wire_format)
        if body_cls is None:
            raise DecodeError(f"unknown wire format {wire_format}")
        return cls(body_cls.read(r), version)
