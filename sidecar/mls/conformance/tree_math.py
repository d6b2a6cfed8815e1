"""Runner for tree-math vectors (RFC 9420 Appendix C)."""

from __future__ import annotations

from typing import Any

from .. import tree_math as tm
from .result import check

__all__ = ["run_case"]


def _optional(fn: Any, x: int, *args: int) -> int | None:
    try:
        return int(fn(x, *args))
    except ValueError:
        return None


def run_case(case: dict[str, Any]) -> None:
    n = case["n_leaves"]
    width = tm.node_width(n)
    check("n_nodes", width, case["n_nodes"])
    check("root", tm.root(n), case["root"])
    for name, fn, args in (
        ("left", tm.left, ()),
        ("right", tm.right, ()),
        ("parent", tm.parent, (n,)),
        ("sibling", tm.sibling, (n,)),
    ):
        got = [_optional(fn, x, *args) for x in range(width)]
        check(name, got, case[name])
