"""TreeKEM: creating and processing UpdatePaths (RFC 9420 sections 7.4-7.6).

The public side lives in ``RatchetTree``; this module adds the private keys a
member holds (``PathKeys``) and the path-secret derivations that connect them.
Both ``create_update_path`` and ``merge_update_path`` mutate the tree they are
given: callers pass a copy and keep it only when the whole commit validates.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace

from . import tree_math as tm
from .errors import DecryptError, ValidationError
from .ratchet_tree import RatchetTree
from .structs import (
    HPKECiphertext,
    LeafNode,
    LeafNodeSource,
    ParentNode,
    UpdatePath,
    UpdatePathNode,
)
from .suites import CipherSuite

__all__ = [
    "PathKeys",
    "PathSecrets",
    "create_update_path",
    "decrypt_update_path",
    "derive_node_key_pair",
    "merge_update_path",
]

# Encodes the provisional GroupContext for a given tree hash.
ContextFor = Callable[[bytes], bytes]


def derive_node_key_pair(suite: CipherSuite, path_secret: bytes) -> tuple[bytes, bytes]:
    """(private, public) HPKE key pair of the node holding ``path_secret``."""
    return suite.derive_key_pair(suite.derive_secret(path_secret, "node"))


@dataclass
class PathKeys:
    """A member's HPKE private keys: node index -> (private, public).

    A key only counts while the tree node still carries the same public key, so
    blanking, truncation or an overwrite by another member's path retires it
    without bookkeeping.
    """

    leaf_index: int
    keys: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)

    def copy(self) -> PathKeys:
        return PathKeys(self.leaf_index, dict(self.keys))

    def private_for(self, tree: RatchetTree, x: int) -> bytes | None:
        entry = self.keys.get(x)
        if entry is None or x >= tree.width:
            return None
        node = tree.node(x)
        if node is None or node.encryption_key != entry[1]:
            return None
        return entry[0]

    def set(self, x: int, private: bytes, public: bytes) -> None:
        self.keys[x] = (private, public)

    def prune(self, tree: RatchetTree) -> None:
        """Forget keys whose node no longer carries the matching public key."""
        self.keys = {x: e for x, e in self.keys.items() if self.private_for(tree, x) is not None}

    def implant_path(self, tree: RatchetTree, fdp: Iterable[int], path_secret: bytes) -> bytes:
        """Derive keys for ``fdp`` nodes (lowest first) from the first one's path secret,
        checking each against the tree; returns the commit secret."""
        suite = tree.suite
        for x in fdp:
            private, public = derive_node_key_pair(suite, path_secret)
            node = tree.node(x)
            if node is None or node.encryption_key != public:
                raise ValidationError(f"path secret does not match the public key of node {x}")
            self.keys[x] = (private, public)
            path_secret = suite.derive_secret(path_secret, "path")
        return path_secret


@dataclass
class PathSecrets:
    """What creating an UpdatePath yields besides the UpdatePath itself."""

    commit_secret: bytes
    # path secret of each filtered-direct-path node, for the Welcome's GroupSecrets
    by_node: dict[int, bytes]
    keys: PathKeys


def _set_path_nodes(
    tree: RatchetTree, leaf_index: int, fdp: list[tuple[int, int]], publics: list[bytes]
) -> bytes:
    """Blank the direct path, put ``publics`` on the filtered direct path, fill in the
    parent hashes; returns the parent hash the leaf must carry."""
    tree.blank_direct_path(2 * leaf_index)
    for (p, _), public in zip(fdp, publics, strict=True):
        tree.set_node(p, ParentNode(public, b"", ()))
    return tree.set_path_parent_hashes(leaf_index, fdp)


def create_update_path(
    tree: RatchetTree,
    leaf_index: int,
    leaf_template: LeafNode,
    *,
    signature_private: bytes,
    group_id: bytes,
    context_for: ContextFor,
    exclude: Collection[int] = (),
    leaf_secret: bytes | None = None,
) -> tuple[UpdatePath, PathSecrets]:
    """Refresh ``leaf_index``'s path in ``tree`` (7.5) and encrypt it to the group.

    ``leaf_template`` supplies the credential, capabilities and extensions of the new
    leaf; ``exclude`` are the leaves added by the same commit; ``context_for`` encodes
    the provisional GroupContext for the new tree hash.
    """
    suite = tree.suite
    if leaf_secret is None:
        leaf_secret = os.urandom(suite.nh)
    fdp = tree.filtered_direct_path(leaf_index)
    keys = PathKeys(leaf_index)
    leaf_private, leaf_public = derive_node_key_pair(suite, leaf_secret)
    keys.set(2 * leaf_index, leaf_private, leaf_public)

    secrets: list[bytes] = []
    publics: list[bytes] = []
    path_secret = leaf_secret
    for p, _ in fdp:
        path_secret = suite.derive_secret(path_secret, "path")
        private, public = derive_node_key_pair(suite, path_secret)
        keys.set(p, private, public)
        secrets.append(path_secret)
        publics.append(public)
    commit_secret = suite.derive_secret(path_secret, "path")

    parent_hash = _set_path_nodes(tree, leaf_index, fdp, publics)
    leaf = replace(
        leaf_template,
        encryption_key=leaf_public,
        leaf_node_source=LeafNodeSource.COMMIT,
        lifetime=None,
        parent_hash=parent_hash,
    ).signed(suite, signature_private, group_id, leaf_index)
    tree.set_node(2 * leaf_index, leaf)

    context = context_for(tree.tree_hash())
    excluded = frozenset(exclude)
    path_nodes = []
    for (_, c), secret, public in zip(fdp, secrets, publics, strict=True):
        ciphertexts = []
        for r in tree.resolution(c, excluded):
            node = tree.node(r)
            assert node is not None
            kem_output, ct = suite.encrypt_with_label(
                node.encryption_key, "UpdatePathNode", context, secret
            )
            ciphertexts.append(HPKECiphertext(kem_output, ct))
        path_nodes.append(UpdatePathNode(public, tuple(ciphertexts)))
    by_node = {p: s for (p, _), s in zip(fdp, secrets, strict=True)}
    return UpdatePath(leaf, tuple(path_nodes)), PathSecrets(commit_secret, by_node, keys)


def merge_update_path(tree: RatchetTree, sender: int, path: UpdatePath) -> list[tuple[int, int]]:
    """Merge a received UpdatePath into ``tree`` (7.5) and verify the leaf's parent hash.

    Returns the sender's filtered direct path (node, copath child) pairs.
    """
    fdp = tree.filtered_direct_path(sender)
    if len(path.nodes) != len(fdp):
        raise ValidationError(
            f"UpdatePath has {len(path.nodes)} nodes, filtered direct path has {len(fdp)}"
        )
    parent_hash = _set_path_nodes(tree, sender, fdp, [n.encryption_key for n in path.nodes])
    if path.leaf_node.parent_hash != parent_hash:
        raise ValidationError("UpdatePath leaf parent_hash does not match the tree")
    tree.set_node(2 * sender, path.leaf_node)
    return fdp


def decrypt_update_path(
    tree: RatchetTree,
    keys: PathKeys,
    sender: int,
    path: UpdatePath,
    fdp: list[tuple[int, int]],
    context: bytes,
    exclude: Collection[int] = (),
) -> tuple[int, bytes, bytes]:
    """Decrypt our path secret from a merged UpdatePath and take the new keys.

    ``tree`` is the tree with the path merged. Returns (node index of the decrypted
    path secret, that path secret, commit secret). ``keys`` is updated in place.
    """
    suite = tree.suite
    me = keys.leaf_index
    if me == sender:
        raise ValidationError("cannot process our own UpdatePath")
    ancestor = tm.common_ancestor(2 * me, 2 * sender)
    i = next((i for i, (p, _) in enumerate(fdp) if p == ancestor), None)
    if i is None:
        raise ValidationError("common ancestor is not on the sender's filtered direct path")
    p, c = fdp[i]
    resolution = tree.resolution(c, frozenset(exclude))
    ciphertexts = path.nodes[i].encrypted_path_secret
    if len(ciphertexts) != len(resolution):
        raise ValidationError(
            f"UpdatePath node {p}: {len(ciphertexts)} ciphertexts for a resolution of "
            f"{len(resolution)}"
        )
    found = next(
        (
            (key, ct)
            for r, ct in zip(resolution, ciphertexts, strict=True)
            if (key := keys.private_for(tree, r)) is not None
        ),
        None,
    )
    if found is None:
        raise DecryptError("no private key for the resolution of our copath node")
    private, ct = found
    path_secret = suite.decrypt_with_label(
        private, "UpdatePathNode", context, ct.kem_output, ct.ciphertext
    )
    for x in tree.direct_path(2 * sender):
        keys.keys.pop(x, None)
    commit_secret = keys.implant_path(tree, [q for q, _ in fdp[i:]], path_secret)
    return p, path_secret, commit_secret
