"""Runner for tree-operations vectors: apply one Add/Update/Remove to a tree."""

from __future__ import annotations

from typing import Any

from ..ratchet_tree import decode_tree
from ..structs import Add, Proposal, Remove, Update
from ..suites import get_suite
from .result import ConformanceError, check

__all__ = ["run_case"]


def run_case(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    tree = decode_tree(suite, bytes.fromhex(case["tree_before"]))
    check("tree_hash_before", tree.tree_hash(), bytes.fromhex(case["tree_hash_before"]))
    body = Proposal.decode(bytes.fromhex(case["proposal"])).body
    if isinstance(body, Add):
        tree.add_leaf(body.key_package.leaf_node)
    elif isinstance(body, Update):
        tree.update_leaf(case["proposal_sender"], body.leaf_node)
    elif isinstance(body, Remove):
        tree.remove_leaf(body.removed)
    else:
        raise ConformanceError("proposal", f"unexpected proposal type {body.proposal_type}")
    check("tree_after", tree.encode(), bytes.fromhex(case["tree_after"]))
    check("tree_hash_after", tree.tree_hash(), bytes.fromhex(case["tree_hash_after"]))
