"""The public ratchet tree (RFC 9420 sections 4, 7.1-7.9, 12.4.3.3).

A ``RatchetTree`` is the array of optional nodes (``LeafNode`` at even indices,
``ParentNode`` at odd ones) of a full binary tree with a power-of-two number of
leaves. Tree hashes are cached per node and invalidated up the direct path when
a node changes, so a commit costs O(log n) hashes. Nodes are immutable structs;
``copy()`` is a shallow copy of the arrays, cheap enough to evaluate every
incoming commit on a copy.

Private keys are not kept here (see ``treekem``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from . import tree_math as tm
from .codec import Reader, Writer
from .errors import DecodeError, SignatureError, ValidationError
from .structs import (
    LeafNode,
    LeafNodeSource,
    Node,
    NodeType,
    ParentNode,
    RequiredCapabilities,
)
from .structs import (
    RatchetTree as RatchetTreeStruct,
)
from .suites import CipherSuite

__all__ = [
    "RatchetTree",
    "check_credential_support",
    "check_leaf_node",
    "check_required_capabilities",
    "decode_tree",
    "validate_tree",
]


def _write_optional_node(w: Writer, node: Node | None) -> None:
    """``optional<LeafNode>`` / ``optional<ParentNode>`` from the cached encoding."""
    if node is None:
        w.u8(0)
    else:
        w.u8(1)
        w.raw(node.encode())


class RatchetTree:
    """Nodes of the tree plus a cache of per-node tree hashes."""

    __slots__ = ("_hashes", "_nodes", "suite")

    def __init__(self, suite: CipherSuite, nodes: Iterable[Node | None] = ()) -> None:
        self.suite = suite
        self._nodes: list[Node | None] = list(nodes)
        width = len(self._nodes)
        if width == 0 or width & (width + 1):
            raise ValidationError(f"tree width {width} is not 2^(d+1)-1")
        for x, node in enumerate(self._nodes):
            if node is not None and isinstance(node, LeafNode) == bool(x & 1):
                raise ValidationError(f"node {x}: wrong node type for its position")
        self._hashes: list[bytes | None] = [None] * width

    # -- construction and wire format ---------------------------------------------

    @classmethod
    def with_leaf(cls, suite: CipherSuite, leaf: LeafNode) -> RatchetTree:
        return cls(suite, [leaf])

    @classmethod
    def from_struct(cls, suite: CipherSuite, tree: RatchetTreeStruct) -> RatchetTree:
        """From the ratchet_tree extension: last node non-blank, padded to full width."""
        nodes = list(tree.nodes)
        if not nodes or nodes[-1] is None:
            raise ValidationError("ratchet_tree must end with a non-blank node")
        width = 1
        while width < len(nodes):
            width = 2 * width + 1
        nodes.extend([None] * (width - len(nodes)))
        return cls(suite, nodes)

    @classmethod
    def decode(cls, suite: CipherSuite, data: bytes) -> RatchetTree:
        return cls.from_struct(suite, RatchetTreeStruct.decode(data))

    def to_struct(self) -> RatchetTreeStruct:
        end = len(self._nodes)
        while end > 0 and self._nodes[end - 1] is None:
            end -= 1
        return RatchetTreeStruct(tuple(self._nodes[:end]))

    def encode(self) -> bytes:
        return self.to_struct().encode()

    def copy(self) -> RatchetTree:
        other = RatchetTree.__new__(RatchetTree)
        other.suite = self.suite
        other._nodes = self._nodes.copy()
        other._hashes = self._hashes.copy()
        return other

    # -- shape and access ------------------------------------------------------------

    @property
    def width(self) -> int:
        return len(self._nodes)

    @property
    def n_leaves(self) -> int:
        return (len(self._nodes) + 1) // 2

    @property
    def root(self) -> int:
        return (len(self._nodes) - 1) // 2

    def node(self, x: int) -> Node | None:
        return self._nodes[x]

    def leaf(self, leaf_index: int) -> LeafNode | None:
        if not 0 <= leaf_index < self.n_leaves:
            return None
        node = self._nodes[2 * leaf_index]
        assert node is None or isinstance(node, LeafNode)
        return node

    def parent_node(self, x: int) -> ParentNode | None:
        node = self._nodes[x]
        assert node is None or isinstance(node, ParentNode)
        return node

    def leaves(self) -> Iterator[tuple[int, LeafNode]]:
        """(leaf index, leaf node) of every non-blank leaf, left to right."""
        nodes = self._nodes
        for x in range(0, len(nodes), 2):
            node = nodes[x]
            if node is not None:
                assert isinstance(node, LeafNode)
                yield x >> 1, node

    def parents(self) -> Iterator[tuple[int, ParentNode]]:
        nodes = self._nodes
        for x in range(1, len(nodes), 2):
            node = nodes[x]
            if node is not None:
                assert isinstance(node, ParentNode)
                yield x, node

    def member_count(self) -> int:
        return sum(1 for x in range(0, len(self._nodes), 2) if self._nodes[x] is not None)

    def direct_path(self, x: int) -> tuple[int, ...]:
        return tm.direct_path(x, self.n_leaves)

    def copath(self, x: int) -> tuple[int, ...]:
        return tm.copath(x, self.n_leaves)

    # -- mutation --------------------------------------------------------------------

    def set_node(self, x: int, node: Node | None) -> None:
        if node is not None and isinstance(node, LeafNode) == bool(x & 1):
            raise ValidationError(f"node {x}: wrong node type for its position")
        self._nodes[x] = node
        self._invalidate(x)

    def _invalidate(self, x: int) -> None:
        hashes = self._hashes
        if hashes[x] is None:
            return  # an uncached node has no cached ancestor
        hashes[x] = None
        for p in tm.direct_path(x, self.n_leaves):
            if hashes[p] is None:
                return
            hashes[p] = None

    def blank_direct_path(self, x: int) -> None:
        for p in self.direct_path(x):
            if self._nodes[p] is not None:
                self.set_node(p, None)

    def extend(self) -> None:
        """Double the number of leaves (new blank root and right subtree)."""
        grow = len(self._nodes) + 1
        self._nodes.extend([None] * grow)
        self._hashes.extend([None] * grow)

    def truncate(self) -> None:
        """Drop right halves while they hold no non-blank leaf (12.1.3)."""
        last = -1
        nodes = self._nodes
        for x in range(len(nodes) - 1, -1, -2):
            if nodes[x] is not None:
                last = x >> 1
                break
        n = self.n_leaves
        while n > 1 and n // 2 > last:
            n //= 2
        if n != self.n_leaves:
            width = tm.node_width(n)
            del self._nodes[width:]
            del self._hashes[width:]

    def free_leaf(self, start: int = 0) -> int:
        """Index of the leftmost blank leaf at or after ``start`` (n_leaves if none)."""
        nodes = self._nodes
        for x in range(2 * start, len(nodes), 2):
            if nodes[x] is None:
                return x >> 1
        return self.n_leaves

    def add_leaf(self, leaf: LeafNode, start: int = 0) -> int:
        """Put ``leaf`` at the leftmost free leaf (extending if needed); mark it unmerged.

        ``start`` skips leaves known to be taken (several adds in a row)."""
        index = self.free_leaf(start)
        if index == self.n_leaves:
            self.extend()
        x = 2 * index
        self.set_node(x, leaf)
        for p in self.direct_path(x):
            node = self._nodes[p]
            if node is not None:
                assert isinstance(node, ParentNode)
                unmerged = tuple(sorted((*node.unmerged_leaves, index)))
                self.set_node(p, replace(node, unmerged_leaves=unmerged))
        return index

    def update_leaf(self, leaf_index: int, leaf: LeafNode) -> None:
        """Replace a member's leaf and blank its direct path (Update proposal)."""
        self.set_node(2 * leaf_index, leaf)
        self.blank_direct_path(2 * leaf_index)

    def remove_leaf(self, leaf_index: int) -> None:
        """Blank a leaf and its direct path, then truncate (Remove proposal)."""
        x = 2 * leaf_index
        if self.leaf(leaf_index) is None:
            raise ValidationError(f"remove of blank leaf {leaf_index}")
        self.set_node(x, None)
        self.blank_direct_path(x)
        self.truncate()

    # -- resolution and paths ------------------------------------------------------

    def resolution(self, x: int, exclude: frozenset[int] | set[int] = frozenset()) -> list[int]:
        """Resolution of node ``x``, leaving out the leaves (leaf indices) in ``exclude``."""
        out: list[int] = []
        self._resolve(x, exclude, out)
        return out

    def _resolve(self, x: int, exclude: frozenset[int] | set[int], out: list[int]) -> None:
        node = self._nodes[x]
        if x & 1 == 0:
            if node is not None and (x >> 1) not in exclude:
                out.append(x)
            return
        if node is not None:
            assert isinstance(node, ParentNode)
            out.append(x)
            out.extend(2 * leaf for leaf in node.unmerged_leaves if leaf not in exclude)
            return
        k = tm.level(x) - 1
        self._resolve(x ^ (1 << k), exclude, out)
        self._resolve(x ^ (3 << k), exclude, out)

    def _has_resolution(self, x: int) -> bool:
        if self._nodes[x] is not None:
            return True
        if x & 1 == 0:
            return False
        k = tm.level(x) - 1
        return self._has_resolution(x ^ (1 << k)) or self._has_resolution(x ^ (3 << k))

    def filtered_direct_path(self, leaf_index: int) -> list[tuple[int, int]]:
        """(direct-path node, its child on the copath) pairs kept by the filter (4.1.2)."""
        x = 2 * leaf_index
        n = self.n_leaves
        return [
            (p, c)
            for p, c in zip(tm.direct_path(x, n), tm.copath(x, n), strict=True)
            if self._has_resolution(c)
        ]

    # -- tree hash (7.8) ---------------------------------------------------------------

    def tree_hash(self, x: int | None = None) -> bytes:
        """Tree hash of node ``x`` (default: the root), cached."""
        if x is None:
            x = self.root
        cached = self._hashes[x]
        if cached is not None:
            return cached
        node = self._nodes[x]
        w = Writer()
        if x & 1 == 0:
            w.u8(NodeType.LEAF)
            w.u32(x >> 1)
            _write_optional_node(w, node)
        else:
            k = tm.level(x) - 1
            left_hash = self.tree_hash(x ^ (1 << k))
            right_hash = self.tree_hash(x ^ (3 << k))
            w.u8(NodeType.PARENT)
            _write_optional_node(w, node)
            w.opaque(left_hash)
            w.opaque(right_hash)
        digest = self.suite.hash(w.getvalue())
        self._hashes[x] = digest
        return digest

    def _tree_hash_without(self, x: int, removed: frozenset[int]) -> bytes:
        """Tree hash of ``x`` with the leaves in ``removed`` blanked and dropped from
        every unmerged_leaves list (the original sibling tree hash of 7.9)."""
        span = tm.subtree_leaves(x)
        if not any(leaf in span for leaf in removed):
            return self.tree_hash(x)
        node = self._nodes[x]
        w = Writer()
        if x & 1 == 0:
            w.u8(NodeType.LEAF)
            w.u32(x >> 1)
            w.u8(0)
        else:
            k = tm.level(x) - 1
            left_hash = self._tree_hash_without(x ^ (1 << k), removed)
            right_hash = self._tree_hash_without(x ^ (3 << k), removed)
            if node is not None:
                assert isinstance(node, ParentNode)
                kept = tuple(leaf for leaf in node.unmerged_leaves if leaf not in removed)
                if kept != node.unmerged_leaves:
                    node = replace(node, unmerged_leaves=kept)
            w.u8(NodeType.PARENT)
            _write_optional_node(w, node)
            w.opaque(left_hash)
            w.opaque(right_hash)
        return self.suite.hash(w.getvalue())

    # -- parent hash (7.9) -------------------------------------------------------------

    def parent_hash_of(self, p: int, sibling_hash: bytes) -> bytes:
        """Parent hash of parent node ``p`` given its copath child's original tree hash."""
        node = self.parent_node(p)
        assert node is not None
        w = Writer()
        w.opaque(node.encryption_key)
        w.opaque(node.parent_hash)
        w.opaque(sibling_hash)
        return self.suite.hash(w.getvalue())

    def set_path_parent_hashes(self, leaf_index: int, fdp: list[tuple[int, int]]) -> bytes:
        """Fill in parent_hash along a freshly set filtered direct path, root first.

        ``fdp`` is the sender's filtered direct path (as from ``filtered_direct_path``)
        whose nodes already hold their new keys. Returns the parent hash the
        sender's leaf must carry.
        """
        parent_hash = b""
        for p, c in reversed(fdp):
            node = self.parent_node(p)
            assert node is not None
            if node.parent_hash != parent_hash:
                self.set_node(p, replace(node, parent_hash=parent_hash))
            parent_hash = self.parent_hash_of(p, self.tree_hash(c))
        return parent_hash

    def verify_parent_hashes(self) -> None:
        """Every non-blank parent node is parent-hash valid (7.9.2, top down)."""
        nodes = self._nodes
        for p, node in self.parents():
            k = tm.level(p) - 1
            left, right = p ^ (1 << k), p ^ (3 << k)
            unmerged = frozenset(node.unmerged_leaves)
            matches = 0
            for c, s in ((left, right), (right, left)):
                ph = self.parent_hash_of(p, self._tree_hash_without(s, unmerged))
                res = self.resolution(c)
                span = tm.subtree_leaves(c)
                in_c = {2 * leaf for leaf in unmerged if leaf in span}
                for d in res:
                    child = nodes[d]
                    assert child is not None
                    if isinstance(child, LeafNode) and (
                        child.leaf_node_source != LeafNodeSource.COMMIT
                    ):
                        continue
                    if child.parent_hash != ph:
                        continue
                    if len(res) - 1 == len(in_c) and in_c == set(res) - {d}:
                        matches += 1
            if matches != 1:
                raise ValidationError(f"parent node {p} is not parent-hash valid")

    # -- structural checks (12.4.3.1) ---------------------------------------------------

    def verify_unmerged_leaves(self) -> None:
        nodes = self._nodes
        n = self.n_leaves
        for p, node in self.parents():
            leaves = node.unmerged_leaves
            if list(leaves) != sorted(set(leaves)):
                raise ValidationError(f"parent node {p}: unmerged_leaves not sorted/unique")
            span = tm.subtree_leaves(p)
            for leaf in leaves:
                if leaf not in span or nodes[2 * leaf] is None:
                    raise ValidationError(f"parent node {p}: bad unmerged leaf {leaf}")
                for q in tm.direct_path(2 * leaf, n):
                    if q == p:
                        break
                    between = nodes[q]
                    if between is not None:
                        assert isinstance(between, ParentNode)
                        if leaf not in between.unmerged_leaves:
                            raise ValidationError(
                                f"node {q}: leaf {leaf} unmerged above but not here"
                            )

    def verify_key_uniqueness(self) -> None:
        """HPKE keys unique across all nodes; signature keys unique across leaves."""
        seen_enc: set[bytes] = set()
        seen_sig: set[bytes] = set()
        for x, node in enumerate(self._nodes):
            if node is None:
                continue
            if node.encryption_key in seen_enc:
                raise ValidationError(f"node {x}: duplicate encryption key")
            seen_enc.add(node.encryption_key)
            if isinstance(node, LeafNode):
                if node.signature_key in seen_sig:
                    raise ValidationError(f"node {x}: duplicate signature key")
                seen_sig.add(node.signature_key)

    def encryption_keys(self) -> set[bytes]:
        return {node.encryption_key for node in self._nodes if node is not None}

    def find_leaf(self, leaf: LeafNode) -> int | None:
        encoded = leaf.encode()
        for index, node in self.leaves():
            if node.encode() == encoded:
                return index
        return None


def decode_tree(suite: CipherSuite, data: bytes) -> RatchetTree:
    """Decode ``optional<Node> ratchet_tree<V>``; DecodeError on malformed bytes."""
    r = Reader(data)
    tree = RatchetTreeStruct.read(r)
    r.done()
    if not tree.nodes:
        raise DecodeError("empty ratchet tree")
    return RatchetTree.from_struct(suite, tree)


# -- leaf node and whole-tree validation (7.3, 12.4.3.1) --------------------------------

# Extension types 1-5 are "default": never listed in capabilities, always supported.
_DEFAULT_EXTENSIONS = frozenset(range(1, 6))
# Proposal types 1-7 likewise.
_DEFAULT_PROPOSALS = frozenset(range(1, 8))


def check_leaf_node(
    suite: CipherSuite,
    leaf: LeafNode,
    *,
    group_id: bytes,
    leaf_index: int,
    source: int | None = None,
    required: RequiredCapabilities | None = None,
    now: int | None = None,
) -> None:
    """Per-leaf checks of 7.3: signature, source, capabilities, extensions, lifetime.

    The group-wide checks (key uniqueness, credential types supported by all
    members) are ``check_credential_support`` and the tree's uniqueness checks.
    """
    if source is not None and leaf.leaf_node_source != source:
        raise ValidationError(
            f"leaf {leaf_index}: leaf_node_source {leaf.leaf_node_source}, want {source}"
        )
    if not leaf.verify_signature(suite, group_id, leaf_index):
        raise SignatureError(f"leaf {leaf_index}: bad LeafNode signature")
    caps = leaf.capabilities
    if leaf.credential.credential_type not in caps.credentials:
        raise ValidationError(f"leaf {leaf_index}: credential type not in capabilities")
    for ext in leaf.extensions:
        if ext.extension_type not in _DEFAULT_EXTENSIONS and (
            ext.extension_type not in caps.extensions
        ):
            raise ValidationError(
                f"leaf {leaf_index}: extension {ext.extension_type} not in capabilities"
            )
    if required is not None:
        check_required_capabilities(leaf, required, leaf_index)
    if now is not None and leaf.leaf_node_source == LeafNodeSource.KEY_PACKAGE:
        lifetime = leaf.lifetime
        assert lifetime is not None
        if not lifetime.not_before <= now <= lifetime.not_after:
            raise ValidationError(f"leaf {leaf_index}: outside its lifetime")


def check_required_capabilities(
    leaf: LeafNode, required: RequiredCapabilities, leaf_index: int
) -> None:
    caps = leaf.capabilities
    for ext in required.extension_types:
        if ext not in _DEFAULT_EXTENSIONS and ext not in caps.extensions:
            raise ValidationError(f"leaf {leaf_index}: lacks required extension {ext}")
    for proposal in required.proposal_types:
        if proposal not in _DEFAULT_PROPOSALS and proposal not in caps.proposals:
            raise ValidationError(f"leaf {leaf_index}: lacks required proposal {proposal}")
    for cred in required.credential_types:
        if cred not in caps.credentials:
            raise ValidationError(f"leaf {leaf_index}: lacks required credential {cred}")


def check_credential_support(tree: RatchetTree) -> None:
    """Every member supports every credential type in use (7.3)."""
    used: set[int] = set()
    supported: set[int] | None = None
    for _, leaf in tree.leaves():
        used.add(leaf.credential.credential_type)
        caps = set(leaf.capabilities.credentials)
        supported = caps if supported is None else supported & caps
    if supported is not None and not used <= supported:
        raise ValidationError("a credential type in use is not supported by every member")


def validate_tree(
    tree: RatchetTree,
    *,
    group_id: bytes,
    required: RequiredCapabilities | None = None,
    now: int | None = None,
) -> None:
    """Full validation of a tree received when joining (12.4.3.1), tree hash aside."""
    for index, leaf in tree.leaves():
        check_leaf_node(
            tree.suite, leaf, group_id=group_id, leaf_index=index, required=required, now=now
        )
    check_credential_support(tree)
    tree.verify_unmerged_leaves()
    tree.verify_key_uniqueness()
    tree.verify_parent_hashes()
