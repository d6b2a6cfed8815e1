"""Group-operation wire structs: the seven proposals, Proposal, ProposalOrRef,
Commit, GroupInfo, GroupSecrets, EncryptedGroupSecrets and Welcome."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as _replace
from typing import ClassVar, Self

from .codec import Reader, Writer
from .errors import DecodeError
from .psk import PreSharedKeyID
from .struct_base import (
    Extension,
    GroupContext,
    HPKECiphertext,
    ProposalOrRefType,
    ProposalType,
    Struct,
    read_extensions,
    write_struct,
)
from .suites import CipherSuite
from .tree_structs import (
    KeyPackage,
    LeafNode,
    UpdatePath,
)

__all__ = [
    "Add",
    "Commit",
    "EncryptedGroupSecrets",
    "ExternalInit",
    "GroupContextExtensions",
    "GroupInfo",
    "GroupSecrets",
    "PathSecret",
    "PreSharedKey",
    "Proposal",
    "ProposalBody",
    "ProposalOrRef",
    "ReInit",
    "Remove",
    "Update",
    "Welcome",
]


# -- proposals and commits --------------------------------------------------------------


@dataclass(frozen=True)
class Add(Struct):
    proposal_type: ClassVar[int] = ProposalType.ADD
    key_package: KeyPackage

    def write(self, w: Writer) -> None:
        self.key_package.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(KeyPackage.read(r))


@dataclass(frozen=True)
class Update(Struct):
    proposal_type: ClassVar[int] = ProposalType.UPDATE
    leaf_node: LeafNode

    def write(self, w: Writer) -> None:
        self.leaf_node.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(LeafNode.read(r))


@dataclass(frozen=True)
class Remove(Struct):
    proposal_type: ClassVar[int] = ProposalType.REMOVE
    removed: int

    def write(self, w: Writer) -> None:
        w.u32(self.removed)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u32())


@dataclass(frozen=True)
class PreSharedKey(Struct):
    proposal_type: ClassVar[int] = ProposalType.PSK
    psk: PreSharedKeyID

    def write(self, w: Writer) -> None:
        self.psk.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(PreSharedKeyID.read(r))


@dataclass(frozen=True)
class ReInit(Struct):
    proposal_type: ClassVar[int] = ProposalType.REINIT
    group_id: bytes
    version: int
    cipher_suite: int
    extensions: tuple[Extension, ...] = ()
    _VECTORS = ("extensions",)

    def write(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u16(self.version)
        w.u16(self.cipher_suite)
        w.vector(self.extensions, write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.u16(), r.u16(), read_extensions(r))


@dataclass(frozen=True)
class ExternalInit(Struct):
    proposal_type: ClassVar[int] = ProposalType.EXTERNAL_INIT
    kem_output: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.kem_output)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True)
class GroupContextExtensions(Struct):
    proposal_type: ClassVar[int] = ProposalType.GROUP_CONTEXT_EXTENSIONS
    extensions: tuple[Extension, ...]
    _VECTORS = ("extensions",)

    def write(self, w: Writer) -> None:
        w.vector(self.extensions, write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(read_extensions(r))


ProposalBody = Add | Update | Remove | PreSharedKey | ReInit | ExternalInit | GroupContextExtensions

_PROPOSAL_BODIES: dict[int, type[ProposalBody]] = {
    cls.proposal_type: cls
    for cls in (Add, Update, Remove, PreSharedKey, ReInit, ExternalInit, GroupContextExtensions)
}


@dataclass(frozen=True)
class Proposal(Struct):
    """``Proposal``: proposal_type (from the body's class), then the body."""

    body: ProposalBody

    @property
    def proposal_type(self) -> int:
        return self.body.proposal_type

    def write(self, w: Writer) -> None:
        w.u16(self.body.proposal_type)
        self.body.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        proposal_type = r.u16()
        body_cls = _PROPOSAL_BODIES.get(proposal_type)
        if body_cls is None:
            raise DecodeError(f"unknown proposal type {proposal_type}")
        return cls(body_cls.read(r))


@dataclass(frozen=True)
class ProposalOrRef(Struct):
    """A proposal by value or by ProposalRef (exactly one is set)."""

    proposal: Proposal | None = None
    reference: bytes | None = None

    def __post_init__(self) -> None:
        if (self.proposal is None) == (self.reference is None):
            raise ValueError("ProposalOrRef needs exactly one of proposal, reference")

    def write(self, w: Writer) -> None:
        if self.proposal is not None:
            w.u8(ProposalOrRefType.PROPOSAL)
            self.proposal.write(w)
        else:
            assert self.reference is not None
            w.u8(ProposalOrRefType.REFERENCE)
            w.opaque(self.reference)

    @classmethod
    def read(cls, r: Reader) -> Self:
        kind = r.u8()
        if kind == ProposalOrRefType.PROPOSAL:
            return cls(proposal=Proposal.read(r))
        if kind == ProposalOrRefType.REFERENCE:
            return cls(reference=r.opaque())
        raise DecodeError(f"unknown ProposalOrRefType {kind}")


@dataclass(frozen=True)
class Commit(Struct):
    proposals: tuple[ProposalOrRef, ...] = ()
    path: UpdatePath | None = None
    _VECTORS = ("proposals",)

    def write(self, w: Writer) -> None:
        w.vector(self.proposals, write_struct)
        w.optional(self.path, write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(ProposalOrRef.read)), r.optional(UpdatePath.read))


# -- group info and welcome ------------------------------------------------------------


@dataclass(frozen=True)
class GroupInfo(Struct):
    group_context: GroupContext
    extensions: tuple[Extension, ...]
    confirmation_tag: bytes
    signer: int
    signature: bytes = b""
    _VECTORS = ("extensions",)

    def _write_tbs(self, w: Writer) -> None:
        self.group_context.write(w)
        w.vector(self.extensions, write_struct)
        w.opaque(self.confirmation_tag)
        w.u32(self.signer)

    def tbs(self) -> bytes:
        """GroupInfoTBS: every field but the signature."""
        w = Writer()
        self._write_tbs(w)
        return w.getvalue()

    def write(self, w: Writer) -> None:
        self._write_tbs(w)
        w.opaque(self.signature)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(GroupContext.read(r), read_extensions(r), r.opaque(), r.u32(), r.opaque())

    def signed(self, suite: CipherSuite, sig_priv: bytes) -> GroupInfo:
        return _replace(self, signature=suite.sign_with_label(sig_priv, "GroupInfoTBS", self.tbs()))

    def verify_signature(self, suite: CipherSuite, sig_pub: bytes) -> bool:
        return suite.verify_with_label(sig_pub, "GroupInfoTBS", self.tbs(), self.signature)


@dataclass(frozen=True)
class PathSecret(Struct):
    path_secret: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.path_secret)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True)
class GroupSecrets(Struct):
    """``path_secret`` is the optional<PathSecret> payload itself (bytes or None)."""

    joiner_secret: bytes
    path_secret: bytes | None = None
    psks: tuple[PreSharedKeyID, ...] = ()
    _VECTORS = ("psks",)

    def write(self, w: Writer) -> None:
        w.opaque(self.joiner_secret)
        w.optional(self.path_secret, Writer.opaque)
        w.vector(self.psks, _write_psk_id)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.optional(Reader.opaque), tuple(r.vector(PreSharedKeyID.read)))


def _write_psk_id(w: Writer, psk_id: PreSharedKeyID) -> None:
    psk_id.write(w)


@dataclass(frozen=True)
class EncryptedGroupSecrets(Struct):
    new_member: bytes
    encrypted_group_secrets: HPKECiphertext

    def write(self, w: Writer) -> None:
        w.opaque(self.new_member)
        self.encrypted_group_secrets.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), HPKECiphertext.read(r))


@dataclass(frozen=True)
class Welcome(Struct):
    cipher_suite: int
    secrets: tuple[EncryptedGroupSecrets, ...]
    encrypted_group_info: bytes
    _VECTORS = ("secrets",)

    def write(self, w: Writer) -> None:
        w.u16(self.cipher_suite)
        w.vector(self.secrets, write_struct)
        w.opaque(self.encrypted_group_info)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u16(), tuple(r.vector(EncryptedGroupSecrets.read)), r.opaque())
