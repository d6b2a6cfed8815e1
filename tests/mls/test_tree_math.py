"""Tree math (RFC 9420 Appendix C) against the RFC's reference definitions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from peertap.sidecar.mls import tree_math as tm


def _ref_level(x: int) -> int:
    if x & 1 == 0:
        return 0
    k = 0
    while (x >> k) & 1 == 1:
        k += 1
    return k


def _ref_direct_path(x: int, n: int) -> list[int]:
    r = tm.root(n)
    out = []
    while x != r:
        x = tm.parent(x, n)
        out.append(x)
    return out


leaf_counts = st.integers(min_value=0, max_value=14).map(lambda k: 1 << k)


def test_eight_member_tree_matches_rfc_figure() -> None:
    n = 8
    assert tm.node_width(n) == 15
    assert tm.root(n) == 7
    assert [tm.level(x) for x in range(15)] == [0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0]
    assert tm.direct_path(0, n) == (1, 3, 7)
    assert tm.copath(0, n) == (2, 5, 11)
    assert tm.direct_path(7, n) == ()
    assert tm.copath(7, n) == ()
    assert tm.left(7) == 3 and tm.right(7) == 11
    assert tm.sibling(4, n) == 6
    assert tm.common_ancestor(0, 6) == 3
    assert tm.common_ancestor(2, 12) == 7
    assert tm.common_ancestor(5, 4) == 5
    assert list(tm.subtree_leaves(11)) == [4, 5, 6, 7]


def test_leaf_node_conversions() -> None:
    assert tm.leaf_to_node(5) == 10
    assert tm.node_to_leaf(10) == 5
    assert tm.is_leaf(10) and not tm.is_leaf(11)


def test_single_leaf_tree_has_no_path() -> None:
    assert tm.root(1) == 0
    assert tm.direct_path(0, 1) == ()
    assert tm.copath(0, 1) == ()


@given(st.integers(min_value=0, max_value=1 << 40))
def test_level_matches_reference(x: int) -> None:
    assert tm.level(x) == _ref_level(x)


@given(leaf_counts, st.data())
def test_parent_children_and_sibling_are_consistent(n: int, data: st.DataObject) -> None:
    w = tm.node_width(n)
    x = data.draw(st.integers(min_value=0, max_value=w - 1))
    if x != tm.root(n):
        p = tm.parent(x, n)
        assert x in (tm.left(p), tm.right(p))
        s = tm.sibling(x, n)
        assert {x, s} == {tm.left(p), tm.right(p)}
    assert tm.direct_path(x, n) == tuple(_ref_direct_path(x, n))
    assert len(tm.copath(x, n)) == len(tm.direct_path(x, n))
    y = data.draw(st.integers(min_value=0, max_value=w - 1))
    a = tm.common_ancestor(x, y)
    for z in (x, y):
        assert a == z or a in tm.direct_path(z, n)
    assert set(tm.subtree_leaves(a)) >= (set(tm.subtree_leaves(x)) | set(tm.subtree_leaves(y)))


def test_leaf_and_non_leaf_errors() -> None:
    for fn in (tm.left, tm.right):
        try:
            fn(4)
        except ValueError:
            pass
        else:
            raise AssertionError("leaf has no children")
    try:
        tm.parent(tm.root(8), 8)
    except ValueError:
        pass
    else:
        raise AssertionError("root has no parent")
