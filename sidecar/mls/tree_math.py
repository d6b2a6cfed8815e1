"""Array-based tree math for the MLS ratchet tree (RFC 9420, Appendix C).

Nodes are indexed in the flat array representation: leaf ``i`` is node ``2*i``,
parent nodes have odd indices. ``n`` is always the number of *leaves* of the tree;
RFC 9420 trees always have a power-of-two number of leaves, but the functions
accept any ``n >= 1`` as in the RFC's reference code.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = [
    "common_ancestor",
    "copath",
    "direct_path",
    "is_leaf",
    "leaf_to_node",
    "left",
    "level",
    "log2",
    "node_to_leaf",
    "node_width",
    "parent",
    "right",
    "root",
    "sibling",
    "subtree_leaves",
]


def log2(x: int) -> int:
    """Exponent of the largest power of 2 not above ``x`` (0 for 0)."""
    return x.bit_length() - 1 if x else 0


def level(x: int) -> int:
    """Level of node ``x``: leaves are 0, parents one above their highest child."""
    # number of trailing one bits
    return (~x & (x + 1)).bit_length() - 1


def is_leaf(x: int) -> bool:
    return not x & 1


def leaf_to_node(leaf: int) -> int:
    return leaf << 1


def node_to_leaf(x: int) -> int:
    if x & 1:
        raise ValueError(f"node {x} is not a leaf")
    return x >> 1


def node_width(n: int) -> int:
    """Number of nodes in a tree with ``n`` leaves."""
    return 2 * (n - 1) + 1 if n else 0


def root(n: int) -> int:
    """Index of the root node of a tree with ``n`` leaves."""
    return (1 << log2(node_width(n))) - 1


def left(x: int) -> int:
    k = level(x)
    if k == 0:
        raise ValueError("leaf node has no children")
    return x ^ (1 << (k - 1))


def right(x: int) -> int:
    k = level(x)
    if k == 0:
        raise ValueError("leaf node has no children")
    return x ^ (3 << (k - 1))


def _parent_step(x: int) -> int:
    k = level(x)
    b = (x >> (k + 1)) & 1
    return (x | (1 << k)) ^ (b << (k + 1))


def parent(x: int, n: int) -> int:
    r = root(n)
    if x == r:
        raise ValueError("root node has no parent")
    p = _parent_step(x)
    # Only needed for non-power-of-two leaf counts (not used by RFC 9420 trees).
    w = node_width(n)
    while p >= w:
        p = _parent_step(p)
    return p


def sibling(x: int, n: int) -> int:
    p = parent(x, n)
    return right(p) if x < p else left(p)


@lru_cache(maxsize=65536)
def direct_path(x: int, n: int) -> tuple[int, ...]:
    """Direct path of ``x`` (its ancestors), ordered from leaf to root."""
    r = root(n)
    out = []
    while x != r:
        x = parent(x, n)
        out.append(x)
    return tuple(out)


@lru_cache(maxsize=65536)
def copath(x: int, n: int) -> tuple[int, ...]:
    """Copath of ``x``: siblings of ``x`` and of each direct-path node but the root."""
    if x == root(n):
        return ()
    chain = (x, *direct_path(x, n)[:-1])
    return tuple(sibling(y, n) for y in chain)


def common_ancestor(x: int, y: int) -> int:
    """Lowest node whose subtree contains both ``x`` and ``y``."""
    lx, ly = level(x) + 1, level(y) + 1
    if lx <= ly and x >> ly == y >> ly:
        return y
    if ly <= lx and x >> lx == y >> lx:
        return x
    xn, yn, k = x, y, 0
    while xn != yn:
        xn, yn = xn >> 1, yn >> 1
        k += 1
    return (xn << k) + (1 << (k - 1)) - 1


def subtree_leaves(x: int) -> range:
    """Leaf indices covered by the subtree rooted at node ``x``."""
    k = level(x)
    first = (x - ((1 << k) - 1)) >> 1
    return range(first, first + (1 << k))
