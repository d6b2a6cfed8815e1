"""Ratchet-tree wire structs: LeafNode, ParentNode, Node, RatchetTree, UpdatePath,
and KeyPackage (whose leaf node joins the tree), with their TBS encodings."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as _replace
from typing import Self

from .codec import Reader, Writer
from .errors import DecodeError, EncodeError
from .struct_base import (
    CachedStruct,
    Capabilities,
    Credential,
    Extension,
    HPKECiphertext,
    LeafNodeSource,
    Lifetime,
    NodeType,
    Struct,
    read_extensions,
    read_u32,
    write_struct,
)
from .suites import CipherSuite

__all__ = [
    "KeyPackage",
    "LeafNode",
    "Node",
    "ParentNode",
    "RatchetTree",
    "UpdatePath",
    "UpdatePathNode",
    "read_node",
    "write_node",
]


# -- tree nodes ------------------------------------------------------------------------


@dataclass(frozen=True)
class LeafNode(CachedStruct):
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
        w.vector(self.extensions, write_struct)

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
        extensions = read_extensions(r)
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
class ParentNode(CachedStruct):
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
        return cls(r.opaque(), r.opaque(), tuple(r.vector(read_u32)))


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
class RatchetTree(Struct):
    """``optional<Node> ratchet_tree<V>``: array-indexed nodes, None for blank."""

    nodes: tuple[Node | None, ...]
    _VECTORS = ("nodes",)

    def write(self, w: Writer) -> None:
        w.vector(self.nodes, _write_optional_node)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(_read_optional_node)))


@dataclass(frozen=True)
class UpdatePathNode(Struct):
    encryption_key: bytes
    encrypted_path_secret: tuple[HPKECiphertext, ...]
    _VECTORS = ("encrypted_path_secret",)

    def write(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.vector(self.encrypted_path_secret, write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), tuple(r.vector(HPKECiphertext.read)))


@dataclass(frozen=True)
class UpdatePath(Struct):
    leaf_node: LeafNode
    nodes: tuple[UpdatePathNode, ...]
    _VECTORS = ("nodes",)

    def write(self, w: Writer) -> None:
        self.leaf_node.write(w)
        w.vector(self.nodes, write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(LeafNode.read(r), tuple(r.vector(UpdatePathNode.read)))


# -- key packages ----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPackage(CachedStruct):
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
        w.vector(self.extensions, write_struct)

    def _write(self, w: Writer) -> None:
        self._write_tbs(w)
        w.opaque(self.signature)

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(r.u16(), r.u16(), r.opaque(), LeafNode.read(r), read_extensions(r), r.opaque())

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
