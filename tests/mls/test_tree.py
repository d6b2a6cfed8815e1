"""Ratchet tree: resolution, filtered direct paths, add/remove shape, tree-hash cache,
parent-hash and leaf validation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from peertap.sidecar.mls.errors import SignatureError, ValidationError
from peertap.sidecar.mls.ratchet_tree import RatchetTree, decode_tree, validate_tree
from peertap.sidecar.mls.structs import (
    Capabilities,
    Credential,
    LeafNode,
    LeafNodeSource,
    ParentNode,
)
from peertap.sidecar.mls.structs import (
    RatchetTree as RatchetTreeStruct,
)
from peertap.sidecar.mls.suites import get_suite

VECTORS = Path(__file__).resolve().parents[1] / "data" / "mls-vectors"
suite = get_suite(1)


def _leaf(name: str) -> LeafNode:
    return LeafNode(
        encryption_key=b"enc-" + name.encode(),
        signature_key=b"sig-" + name.encode(),
        credential=Credential.basic(name.encode()),
        capabilities=Capabilities((1,), (1,), (), (), (1,)),
        leaf_node_source=LeafNodeSource.UPDATE,
    )


def _parent(name: str, unmerged: tuple[int, ...] = ()) -> ParentNode:
    return ParentNode(b"enc-" + name.encode(), b"", unmerged)


def _tree(spec: dict[int, LeafNode | ParentNode], width: int) -> RatchetTree:
    return RatchetTree(suite, [spec.get(x) for x in range(width)])


def test_resolution_matches_rfc_figure_10() -> None:
    # X[B] at node 3, Y at node 9; leaves A B _ D E F _ H
    spec: dict[int, LeafNode | ParentNode] = {
        0: _leaf("A"),
        2: _leaf("B"),
        6: _leaf("D"),
        8: _leaf("E"),
        10: _leaf("F"),
        14: _leaf("H"),
        3: _parent("X", (1,)),
        9: _parent("Y"),
    }
    tree = _tree(spec, 15)
    assert tree.resolution(3) == [3, 2]
    assert tree.resolution(4) == []
    assert tree.resolution(12) == []
    assert tree.resolution(7) == [3, 2, 9, 14]
    assert tree.resolution(7, exclude=frozenset({1, 7})) == [3, 9]


def test_filtered_direct_path_matches_rfc_table_2() -> None:
    # T at node 1, X at 9, Y at 11, W at 7; leaves A B _ _ E F G _
    spec: dict[int, LeafNode | ParentNode] = {
        0: _leaf("A"),
        2: _leaf("B"),
        8: _leaf("E"),
        10: _leaf("F"),
        12: _leaf("G"),
        1: _parent("T"),
        9: _parent("X"),
        11: _parent("Y"),
        7: _parent("W"),
    }
    tree = _tree(spec, 15)

    def fdp(leaf: int) -> list[int]:
        return [p for p, _ in tree.filtered_direct_path(leaf)]

    assert fdp(0) == [1, 7]  # A: T, W
    assert fdp(1) == [1, 7]  # B: T, W
    assert fdp(4) == [9, 11, 7]  # E: X, Y, W
    assert fdp(5) == [9, 11, 7]  # F
    assert fdp(6) == [11, 7]  # G: Y, W


def test_add_extends_marks_unmerged_and_remove_truncates() -> None:
    tree = RatchetTree.with_leaf(suite, _leaf("A"))
    assert tree.add_leaf(_leaf("B")) == 1
    assert tree.width == 3
    tree.set_node(1, _parent("P"))
    assert tree.add_leaf(_leaf("C")) == 2
    assert tree.width == 7
    assert tree.parent_node(1) == _parent("P")  # C is not below P
    tree.set_node(3, _parent("R"))
    tree.remove_leaf(1)
    assert tree.node(1) is None and tree.node(3) is None
    assert tree.add_leaf(_leaf("D")) == 1  # leftmost blank leaf
    tree.set_node(3, _parent("R2"))
    assert tree.add_leaf(_leaf("E")) == 3
    assert tree.parent_node(3) == _parent("R2", (3,))
    tree.remove_leaf(3)
    tree.remove_leaf(2)
    assert tree.width == 3  # right half empty: truncated
    with pytest.raises(ValidationError):
        tree.remove_leaf(2)


def test_tree_hash_cache_matches_a_fresh_computation() -> None:
    tree = RatchetTree.with_leaf(suite, _leaf("A"))
    for name in "BCDEFG":
        tree.add_leaf(_leaf(name))
        tree.tree_hash()
    tree.set_node(3, _parent("Q", (2,)))
    tree.tree_hash()
    tree.update_leaf(4, replace(_leaf("E"), encryption_key=b"enc-E2"))
    tree.remove_leaf(6)
    fresh = RatchetTree.from_struct(suite, tree.to_struct())
    for x in range(tree.width):
        assert tree.tree_hash(x) == fresh.tree_hash(x)


def test_encoding_round_trip_and_trailing_blank_rejected() -> None:
    tree = RatchetTree.with_leaf(suite, _leaf("A"))
    tree.add_leaf(_leaf("B"))
    tree.add_leaf(_leaf("C"))
    data = tree.encode()
    assert decode_tree(suite, data).encode() == data
    with pytest.raises(ValidationError):
        RatchetTree.from_struct(suite, RatchetTreeStruct((_leaf("A"), None, None)))
    with pytest.raises(ValidationError):
        RatchetTree.from_struct(suite, RatchetTreeStruct((_parent("A"),)))


def _vector_tree(index: int) -> tuple[RatchetTree, bytes]:
    case = json.loads((VECTORS / "tree-validation.json").read_text())[index]
    suite_ = get_suite(case["cipher_suite"])
    return decode_tree(suite_, bytes.fromhex(case["tree"])), bytes.fromhex(case["group_id"])


def test_vector_trees_validate_and_a_wrong_parent_hash_does_not() -> None:
    tree, group_id = _vector_tree(3)
    validate_tree(tree, group_id=group_id)
    x, node = next(tree.parents())
    tree.set_node(x, replace(node, parent_hash=bytes(len(node.parent_hash) or 32)))
    with pytest.raises(ValidationError, match="parent-hash valid"):
        tree.verify_parent_hashes()


def test_tampered_leaf_signature_fails_tree_validation() -> None:
    tree, group_id = _vector_tree(3)
    index, leaf = next(tree.leaves())
    tree.set_node(2 * index, replace(leaf, signature=bytes(len(leaf.signature))))
    with pytest.raises(SignatureError):
        validate_tree(tree, group_id=group_id)
    tree, _ = _vector_tree(3)
    with pytest.raises(SignatureError):
        validate_tree(tree, group_id=b"another group")


def test_duplicate_keys_and_bad_unmerged_leaves_fail_validation() -> None:
    tree = RatchetTree.with_leaf(suite, _leaf("A"))
    tree.add_leaf(replace(_leaf("B"), encryption_key=b"enc-A"))
    with pytest.raises(ValidationError, match="duplicate encryption key"):
        tree.verify_key_uniqueness()
    tree = _tree({0: _leaf("A"), 2: _leaf("B"), 1: _parent("P", (1, 0))}, 3)
    with pytest.raises(ValidationError, match="sorted"):
        tree.verify_unmerged_leaves()
    tree = _tree({0: _leaf("A"), 1: _parent("P", (1,))}, 3)
    with pytest.raises(ValidationError, match="unmerged leaf"):
        tree.verify_unmerged_leaves()
