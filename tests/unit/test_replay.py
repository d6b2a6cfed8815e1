"""Replay window: every counter accepted once, old ones outside the window refused."""

from hypothesis import given
from hypothesis import strategies as st

from peertap.sidecar.replay import WINDOW, ReplayWindow


@given(st.lists(st.integers(0, 5000), max_size=300))
def test_each_counter_is_accepted_at_most_once(counters):
    w = ReplayWindow()
    accepted = set()
    for c in counters:
        ok = w.check(c) and w.accept(c)
        if ok:
            assert c not in accepted
            accepted.add(c)
        elif c not in accepted:
            # Only refused if it fell out of the window below the highest.
            assert c <= w.highest - WINDOW


def test_reordered_packets_inside_the_window_are_accepted():
    w = ReplayWindow()
    for c in (10, 5, 7, 6, 9):
        assert w.check(c) and w.accept(c)
    assert not w.check(7)
    assert not w.accept(7)


def test_counter_far_behind_is_refused_after_a_jump():
    w = ReplayWindow()
    assert w.accept(1)
    assert w.accept(1 + WINDOW * 3)
    assert not w.check(2)
    assert w.check(1 + WINDOW * 3 - 1)
