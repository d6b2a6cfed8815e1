"""Runner for tree-validation vectors: resolutions, tree hashes, parent hashes, signatures."""

from __future__ import annotations

from typing import Any

from ..ratchet_tree import decode_tree, validate_tree
from ..suites import get_suite
from .result import check

__all__ = ["run_case"]


def run_case(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    tree = decode_tree(suite, bytes.fromhex(case["tree"]))
    check("n_nodes", tree.width, len(case["tree_hashes"]))
    for x, want in enumerate(case["resolutions"]):
        check(f"resolutions[{x}]", tree.resolution(x), want)
    for x, want in enumerate(case["tree_hashes"]):
        check(f"tree_hashes[{x}]", tree.tree_hash(x), bytes.fromhex(want))
    validate_tree(tree, group_id=bytes.fromhex(case["group_id"]))
