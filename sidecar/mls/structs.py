"""RFC 9420 wire structs as frozen dataclasses.

Every struct has ``write(w)`` / ``encode()`` and ``read(r)`` / ``decode(data)``
(``decode`` rejects trailing bytes). Conventions:

* Vectors are tuples (lists passed to a constructor are turned into tuples).
* Enumerations are stored as plain ints; the ``IntEnum`` classes name the values.
  An unknown value that decides how the rest is parsed (a ``select``) is a
  DecodeError; other unknown values are kept for the validity checks.
* Variant structs hold their variant by type: ``Proposal.body`` is an ``Add``,
  ``Update``, ...; ``FramedContent.content`` is ``bytes`` (application data), a
  ``Proposal`` or a ``Commit``; ``MLSMessage.body`` is one of the five messages.
  The discriminating enum is a property derived from that type.
* ``LeafNode``, ``KeyPackage``, ``ParentNode`` and ``GroupContext`` remember their
  encoding (the bytes they were decoded from, or the first ``encode()``), since
  tree hashes and references encode them again and again.

Struct encodings used only as signature/MAC inputs (FramedContentTBS,
AuthenticatedContentTBM, PrivateContentAAD, SenderDataAAD, PrivateMessageContent)
live in ``framing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as _replace
from enum import IntEnum
from typing import ClassVar, Self

from .codec import Reader, Writer
from .errors import DecodeError, EncodeError
from .psk import PreSharedKeyID
from .suites import CipherSuite

__all__ = [
    "Add",
    "ApplicationId",
    "AuthenticatedContent",
    "Capabilities",
    "Commit",
    "ContentType",
    "Credential",
    "CredentialType",
    "EncryptedGroupSecrets",
    "Extension",
    "ExtensionType",
    "ExternalInit",
    "ExternalPub",
    "ExternalSender",
    "ExternalSenders",
    "FramedContent",
    "FramedContentAuthData",
    "GroupContext",
    "GroupContextExtensions",
    "GroupInfo",
    "GroupSecrets",
    "HPKECiphertext",
    "KeyPackage",
    "LeafNode",
    "LeafNodeSource",
    "Lifetime",
    "MLSMessage",
    "Node",
    "NodeType",
    "ParentNode",
    "PathSecret",
    "PreSharedKey",
    "PreSharedKeyID",
    "PrivateMessage",
    "Proposal",
    "ProposalBody",
    "ProposalOrRef",
    "ProposalOrRefType",
    "ProposalType",
    "ProtocolVersion",
    "PublicMessage",
    "RatchetTree",
    "ReInit",
    "Remove",
    "RequiredCapabilities",
    "Sender",
    "SenderData",
    "SenderType",
    "Update",
    "UpdatePath",
    "UpdatePathNode",
    "Welcome",
    "WireFormat",
    "read_node",
    "write_node",
]


class ProtocolVersion(IntEnum):
    MLS10 = 1


class ContentType(IntEnum):
    APPLICATION = 1
    PROPOSAL = 2
    COMMIT = 3


class SenderType(IntEnum):
    MEMBER = 1
    EXTERNAL = 2
    NEW_MEMBER_PROPOSAL = 3
    NEW_MEMBER_COMMIT = 4


class WireFormat(IntEnum):
    PUBLIC_MESSAGE = 1
    PRIVATE_MESSAGE = 2
    WELCOME = 3
    GROUP_INFO = 4
    KEY_PACKAGE = 5


class CredentialType(IntEnum):
    BASIC = 1
    X509 = 2


class ExtensionType(IntEnum):
    APPLICATION_ID = 1
    RATCHET_TREE = 2
    REQUIRED_CAPABILITIES = 3
    EXTERNAL_PUB = 4
    EXTERNAL_SENDERS = 5


class ProposalType(IntEnum):
    ADD = 1
    UPDATE = 2
    REMOVE = 3
    PSK = 4
    REINIT = 5
    EXTERNAL_INIT = 6
    GROUP_CONTEXT_EXTENSIONS = 7


class LeafNodeSource(IntEnum):
    KEY_PACKAGE = 1
    UPDATE = 2
    COMMIT = 3


class NodeType(IntEnum):
    LEAF = 1
    PARENT = 2


class ProposalOrRefType(IntEnum):
    PROPOSAL = 1
    REFERENCE = 2


class _Struct:
    """encode/decode around the per-class write/read; tuple-normalises vector fields."""

    _VECTORS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name in self._VECTORS:
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    def write(self, w: Writer) -> None:
        raise NotImplementedError

    @classmethod
    def read(cls, r: Reader) -> Self:
        raise NotImplementedError

    def encode(self) -> bytes:
        w = Writer()
        self.write(w)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data)
        value = cls.read(r)
        r.done()
        return value


class _CachedStruct(_Struct):
    """A struct that keeps its encoding: subclasses implement ``_write``/``_read``."""

    def _write(self, w: Writer) -> None:
        raise NotImplementedError

    @classmethod
    def _read(cls, r: Reader) -> Self:
        raise NotImplementedError

    def encode(self) -> bytes:
        cached: bytes | None = self.__dict__.get("_encoding")
        if cached is None:
            w = Writer()
            self._write(w)
            cached = self.__dict__["_encoding"] = w.getvalue()
        return cached

    def write(self, w: Writer) -> None:
        w.raw(self.encode())

    @classmethod
    def read(cls, r: Reader) -> Self:
        start = r.pos
        value = cls._read(r)
        value.__dict__["_encoding"] = r.slice(start, r.pos)
        return value


def _read_u16(r: Reader) -> int:
    return r.u16()


def _read_u32(r: Reader) -> int:
    return r.u32()


def _write_struct(w: Writer, item: _Struct) -> None:
    item.write(w)


# -- basic building blocks ------------------------------------------------------------


@dataclass(frozen=True)
class Extension(_Struct):
    extension_type: int
    extension_data: bytes

    def write(self, w: Writer) -> None:
        w.u16(self.extension_type)
        w.opaque(self.extension_data)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u16(), r.opaque())


def _read_extensions(r: Reader) -> tuple[Extension, ...]:
    return tuple(r.vector(Extension.read))


@dataclass(frozen=True)
class HPKECiphertext(_Struct):
    kem_output: bytes
    ciphertext: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.kem_output)
        w.opaque(self.ciphertext)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.opaque())


@dataclass(frozen=True)
class Credential(_Struct):
    """Basic (``identity``) or X.509 (``certificates``, DER each) credential."""

    credential_type: int
    identity: bytes = b""
    certificates: tuple[bytes, ...] = ()
    _VECTORS = ("certificates",)

    @classmethod
    def basic(cls, identity: bytes) -> Self:
        return cls(CredentialType.BASIC, identity=identity)

    @classmethod
    def x509(cls, certificates: tuple[bytes, ...]) -> Self:
        return cls(CredentialType.X509, certificates=certificates)

    def write(self, w: Writer) -> None:
        w.u16(self.credential_type)
        if self.credential_type == CredentialType.BASIC:
            w.opaque(self.identity)
        elif self.credential_type == CredentialType.X509:
            w.vector(self.certificates, Writer.opaque)
        else:
            raise EncodeError(f"unknown credential type {self.credential_type}")

    @classmethod
    def read(cls, r: Reader) -> Self:
        credential_type = r.u16()
        if credential_type == CredentialType.BASIC:
            return cls(credential_type, identity=r.opaque())
        if credential_type == CredentialType.X509:
            return cls(credential_type, certificates=tuple(r.vector(Reader.opaque)))
        raise DecodeError(f"unknown credential type {credential_type}")


@dataclass(frozen=True)
class Capabilities(_Struct):
    versions: tuple[int, ...] = ()
    cipher_suites: tuple[int, ...] = ()
    extensions: tuple[int, ...] = ()
    proposals: tuple[int, ...] = ()
    credentials: tuple[int, ...] = ()
    _VECTORS = ("versions", "cipher_suites", "extensions", "proposals", "credentials")

    def write(self, w: Writer) -> None:
        for values in (
            self.versions,
            self.cipher_suites,
            self.extensions,
            self.proposals,
            self.credentials,
        ):
            w.vector(values, Writer.u16)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(*(tuple(r.vector(_read_u16)) for _ in range(5)))


@dataclass(frozen=True)
class Lifetime(_Struct):
    not_before: int
    not_after: int

    def write(self, w: Writer) -> None:
        w.u64(self.not_before)
        w.u64(self.not_after)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u64(), r.u64())


# -- group context and extension payloads ---------------------------------------------


@dataclass(frozen=True)
class GroupContext(_CachedStruct):
    version: int
    cipher_suite: int
    group_id: bytes
    epoch: int
    tree_hash: bytes
    confirmed_transcript_hash: bytes
    extensions: tuple[Extension, ...] = ()
    _VECTORS = ("extensions",)

    def _write(self, w: Writer) -> None:
        w.u16(self.version)
        w.u16(self.cipher_suite)
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.opaque(self.tree_hash)
        w.opaque(self.confirmed_transcript_hash)
        w.vector(self.extensions, _write_struct)

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(
            r.u16(), r.u16(), r.opaque(), r.u64(), r.opaque(), r.opaque(), _read_extensions(r)
        )


@dataclass(frozen=True)
class ApplicationId(_Struct):
    application_id: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.application_id)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True)
class RequiredCapabilities(_Struct):
    extension_types: tuple[int, ...] = ()
    proposal_types: tuple[int, ...] = ()
    credential_types: tuple[int, ...] = ()
    _VECTORS = ("extension_types", "proposal_types", "credential_types")

    def write(self, w: Writer) -> None:
        w.vector(self.extension_types, Writer.u16)
        w.vector(self.proposal_types, Writer.u16)
        w.vector(self.credential_types, Writer.u16)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(*(tuple(r.vector(_read_u16)) for _ in range(3)))


@dataclass(frozen=True)
class ExternalPub(_Struct):
    external_pub: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.external_pub)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True)
class ExternalSender(_Struct):
    signature_key: bytes
    credential: Credential

    def write(self, w: Writer) -> None:
        w.opaque(self.signature_key)
        self.credential.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), Credential.read(r))


@dataclass(frozen=True)
class ExternalSenders(_Struct):
    """The external_senders extension payload: ``ExternalSender external_senders<V>``."""

    senders: tuple[ExternalSender, ...]
    _VECTORS = ("senders",)

    def write(self, w: Writer) -> None:
        w.vector(self.senders, _write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(ExternalSender.read)))


# -- tree nodes ------------------------------------------------------------------------


@dataclass(frozen=True)
class LeafNode(_CachedStruct):
    """A member's leaf. ``lifetime`` is set iff the source is key_package,
    ``parent_hash`` is meaningful iff the source is commit."""

    encryption_key: bytes
    signature_key: bytes
    credential: Credential
    capabilities: Capabilities
    leaf_node_source: int
    lifetime: Lifetime | None = None
    parent_hash: bytes = b""
    extensions: tuple[Extension, ...] = ()
    signature: bytes = b""
    _VECTORS = ("extensions",)

    def _write_content(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.opaque(self.signature_key)
        self.credential.write(w)
        self.capabilities.write(w)
        w.u8(self.leaf_node_source)
        if self.leaf_node_source == LeafNodeSource.KEY_PACKAGE:
            if self.lifetime is None:
                raise EncodeError("key_package leaf node needs a lifetime")
            self.lifetime.write(w)
        elif self.leaf_node_source == LeafNodeSource.COMMIT:
            w.opaque(self.parent_hash)
        elif self.leaf_node_source != LeafNodeSource.UPDATE:
            raise EncodeError(f"unknown leaf node source {self.leaf_node_source}")
        w.vector(self.extensions, _write_struct)

    def _write(self, w: Writer) -> None:
        self._write_content(w)
        w.opaque(self.signature)

    @classmethod
    def _read(cls, r: Reader) -> Self:
        encryption_key, signature_key = r.opaque(), r.opaque()
        credential, capabilities = Credential.read(r), Capabilities.read(r)
        source = r.u8()
        lifetime, parent_hash = None, b""
        if source == LeafNodeSource.KEY_PACKAGE:
            lifetime = Lifetime.read(r)
        elif source == LeafNodeSource.COMMIT:
            parent_hash = r.opaque()
        elif source != LeafNodeSource.UPDATE:
            raise DecodeError(f"unknown leaf node source {source}")
        extensions = _read_extensions(r)
        return cls(
            encryption_key,
            signature_key,
            credential,
            capabilities,
            source,
            lifetime,
            parent_hash,
            extensions,
            r.opaque(),
        )

    def tbs(self, group_id: bytes = b"", leaf_index: int = 0) -> bytes:
        """LeafNodeTBS; ``group_id``/``leaf_index`` count for update and commit sources."""
        w = Writer()
        self._write_content(w)
        if self.leaf_node_source != LeafNodeSource.KEY_PACKAGE:
            w.opaque(group_id)
            w.u32(leaf_index)
        return w.getvalue()

    def signed(
        self, suite: CipherSuite, sig_priv: bytes, group_id: bytes = b"", leaf_index: int = 0
    ) -> LeafNode:
        """A copy carrying a fresh signature over ``tbs(group_id, leaf_index)``."""
        signature = suite.sign_with_label(sig_priv, "LeafNodeTBS", self.tbs(group_id, leaf_index))
        return _replace(self, signature=signature)

    def verify_signature(
        self, suite: CipherSuite, group_id: bytes = b"", leaf_index: int = 0
    ) -> bool:
        tbs = self.tbs(group_id, leaf_index)
        return suite.verify_with_label(self.signature_key, "LeafNodeTBS", tbs, self.signature)


@dataclass(frozen=True)
class ParentNode(_CachedStruct):
    encryption_key: bytes
    parent_hash: bytes = b""
    unmerged_leaves: tuple[int, ...] = ()
    _VECTORS = ("unmerged_leaves",)

    def _write(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.opaque(self.parent_hash)
        w.vector(self.unmerged_leaves, Writer.u32)

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.opaque(), tuple(r.vector(_read_u32)))


Node = LeafNode | ParentNode


def write_node(w: Writer, node: Node) -> None:
    """``Node``: node_type, then the leaf or parent node."""
    w.u8(NodeType.LEAF if isinstance(node, LeafNode) else NodeType.PARENT)
    node.write(w)


def read_node(r: Reader) -> Node:
    node_type = r.u8()
    if node_type == NodeType.LEAF:
        return LeafNode.read(r)
    if node_type == NodeType.PARENT:
        return ParentNode.read(r)
    raise DecodeError(f"unknown node type {node_type}")


def _write_optional_node(w: Writer, node: Node | None) -> None:
    if node is None:
        w.u8(0)
    else:
        w.u8(1)
        write_node(w, node)


def _read_optional_node(r: Reader) -> Node | None:
    return r.optional(read_node)


@dataclass(frozen=True)
class RatchetTree(_Struct):
    """``optional<Node> ratchet_tree<V>``: array-indexed nodes, None for blank."""

    nodes: tuple[Node | None, ...]
    _VECTORS = ("nodes",)

    def write(self, w: Writer) -> None:
        w.vector(self.nodes, _write_optional_node)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(_read_optional_node)))


@dataclass(frozen=True)
class UpdatePathNode(_Struct):
    encryption_key: bytes
    encrypted_path_secret: tuple[HPKECiphertext, ...]
    _VECTORS = ("encrypted_path_secret",)

    def write(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.vector(self.encrypted_path_secret, _write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), tuple(r.vector(HPKECiphertext.read)))


@dataclass(frozen=True)
class UpdatePath(_Struct):
    leaf_node: LeafNode
    nodes: tuple[UpdatePathNode, ...]
    _VECTORS = ("nodes",)

    def write(self, w: Writer) -> None:
        self.leaf_node.write(w)
        w.vector(self.nodes, _write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(LeafNode.read(r), tuple(r.vector(UpdatePathNode.read)))


# -- key packages ----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPackage(_CachedStruct):
    version: int
    cipher_suite: int
    init_key: bytes
    leaf_node: LeafNode
    extensions: tuple[Extension, ...] = ()
    signature: bytes = b""
    _VECTORS = ("extensions",)

    def tbs(self) -> bytes:
        """KeyPackageTBS: every field but the signature."""
        w = Writer()
        self._write_tbs(w)
        return w.getvalue()

    def _write_tbs(self, w: Writer) -> None:
        w.u16(self.version)
        w.u16(self.cipher_suite)
        w.opaque(self.init_key)
        self.leaf_node.write(w)
        w.vector(self.extensions, _write_struct)

    def _write(self, w: Writer) -> None:
        self._write_tbs(w)
        w.opaque(self.signature)

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(r.u16(), r.u16(), r.opaque(), LeafNode.read(r), _read_extensions(r), r.opaque())

    def signed(self, suite: CipherSuite, sig_priv: bytes) -> KeyPackage:
        signature = suite.sign_with_label(sig_priv, "KeyPackageTBS", self.tbs())
        return _replace(self, signature=signature)

    def verify_signature(self, suite: CipherSuite) -> bool:
        return suite.verify_with_label(
            self.leaf_node.signature_key, "KeyPackageTBS", self.tbs(), self.signature
        )

    def ref(self, suite: CipherSuite) -> bytes:
        """KeyPackageRef (cached per suite)."""
        key = f"_ref{suite.id}"
        cached: bytes | None = self.__dict__.get(key)
        if cached is None:
            cached = self.__dict__[key] = suite.make_key_package_ref(self.encode())
        return cached


# -- proposals and commits --------------------------------------------------------------


@dataclass(frozen=True)
class Add(_Struct):
    proposal_type: ClassVar[int] = ProposalType.ADD
    key_package: KeyPackage

    def write(self, w: Writer) -> None:
        self.key_package.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(KeyPackage.read(r))


@dataclass(frozen=True)
class Update(_Struct):
    proposal_type: ClassVar[int] = ProposalType.UPDATE
    leaf_node: LeafNode

    def write(self, w: Writer) -> None:
        self.leaf_node.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(LeafNode.read(r))


@dataclass(frozen=True)
class Remove(_Struct):
    proposal_type: ClassVar[int] = ProposalType.REMOVE
    removed: int

    def write(self, w: Writer) -> None:
        w.u32(self.removed)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u32())


@dataclass(frozen=True)
class PreSharedKey(_Struct):
    proposal_type: ClassVar[int] = ProposalType.PSK
    psk: PreSharedKeyID

    def write(self, w: Writer) -> None:
        self.psk.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(PreSharedKeyID.read(r))


@dataclass(frozen=True)
class ReInit(_Struct):
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
        w.vector(self.extensions, _write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.u16(), r.u16(), _read_extensions(r))


@dataclass(frozen=True)
class ExternalInit(_Struct):
    proposal_type: ClassVar[int] = ProposalType.EXTERNAL_INIT
    kem_output: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.kem_output)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True)
class GroupContextExtensions(_Struct):
    proposal_type: ClassVar[int] = ProposalType.GROUP_CONTEXT_EXTENSIONS
    extensions: tuple[Extension, ...]
    _VECTORS = ("extensions",)

    def write(self, w: Writer) -> None:
        w.vector(self.extensions, _write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_read_extensions(r))


ProposalBody = Add | Update | Remove | PreSharedKey | ReInit | ExternalInit | GroupContextExtensions

_PROPOSAL_BODIES: dict[int, type[ProposalBody]] = {
    cls.proposal_type: cls
    for cls in (Add, Update, Remove, PreSharedKey, ReInit, ExternalInit, GroupContextExtensions)
}


@dataclass(frozen=True)
class Proposal(_Struct):
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
class ProposalOrRef(_Struct):
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
class Commit(_Struct):
    proposals: tuple[ProposalOrRef, ...] = ()
    path: UpdatePath | None = None
    _VECTORS = ("proposals",)

    def write(self, w: Writer) -> None:
        w.vector(self.proposals, _write_struct)
        w.optional(self.path, _write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(ProposalOrRef.read)), r.optional(UpdatePath.read))


# -- group info and welcome ------------------------------------------------------------


@dataclass(frozen=True)
class GroupInfo(_Struct):
    group_context: GroupContext
    extensions: tuple[Extension, ...]
    confirmation_tag: bytes
    signer: int
    signature: bytes = b""
    _VECTORS = ("extensions",)

    def _write_tbs(self, w: Writer) -> None:
        self.group_context.write(w)
        w.vector(self.extensions, _write_struct)
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
        return cls(GroupContext.read(r), _read_extensions(r), r.opaque(), r.u32(), r.opaque())

    def signed(self, suite: CipherSuite, sig_priv: bytes) -> GroupInfo:
        return _replace(self, signature=suite.sign_with_label(sig_priv, "GroupInfoTBS", self.tbs()))

    def verify_signature(self, suite: CipherSuite, sig_pub: bytes) -> bool:
        return suite.verify_with_label(sig_pub, "GroupInfoTBS", self.tbs(), self.signature)


@dataclass(frozen=True)
class PathSecret(_Struct):
    path_secret: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.path_secret)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True)
class GroupSecrets(_Struct):
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
class EncryptedGroupSecrets(_Struct):
    new_member: bytes
    encrypted_group_secrets: HPKECiphertext

    def write(self, w: Writer) -> None:
        w.opaque(self.new_member)
        self.encrypted_group_secrets.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), HPKECiphertext.read(r))


@dataclass(frozen=True)
class Welcome(_Struct):
    cipher_suite: int
    secrets: tuple[EncryptedGroupSecrets, ...]
    encrypted_group_info: bytes
    _VECTORS = ("secrets",)

    def write(self, w: Writer) -> None:
        w.u16(self.cipher_suite)
        w.vector(self.secrets, _write_struct)
        w.opaque(self.encrypted_group_info)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u16(), tuple(r.vector(EncryptedGroupSecrets.read)), r.opaque())


# -- framing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sender(_Struct):
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
class FramedContent(_Struct):
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
class FramedContentAuthData(_Struct):
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
class AuthenticatedContent(_Struct):
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
class PublicMessage(_Struct):
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
class PrivateMessage(_Struct):
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
class SenderData(_Struct):
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
class MLSMessage(_Struct):
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
