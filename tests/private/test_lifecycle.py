"""The group lifecycle rules (mvlan_lifecycle.py), table-driven."""

from __future__ import annotations

import pytest

from peertap.sidecar.private import lifecycle as lc

A, B, C, D = (bytes([i]) * 32 for i in range(1, 5))
MEMBERS = {0: A, 1: B, 2: C}
TIMEOUT = 30.0


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        ({A, B, C}, 0),
        ({B, C}, 1),
        ({C}, 2),
        ({D}, None),
    ],
)
def test_committer_is_the_lowest_live_leaf(live: set[bytes], expected: int | None) -> None:
    assert lc.committer(MEMBERS, live) == expected


def test_live_keys_are_those_heard_within_the_timeout_and_our_own() -> None:
    heard = {B: 70.0, C: 71.0}
    assert lc.live_keys(heard, now=100.0, member_timeout=TIMEOUT, own=A) == {A, C}


def _plan(**change: object) -> lc.CommitPlan:
    args: dict[str, object] = {
        "own_leaf": 0,
        "members": MEMBERS,
        "heard": {B: 95.0, C: 95.0},
        "since": {A: 0.0, B: 0.0, C: 0.0},
        "offers": {},
        "expired": (),
        "now": 100.0,
        "member_timeout": TIMEOUT,
        "epoch_since": 90.0,
        "rekey_interval": 3600.0,
    }
    args.update(change)
    return lc.plan_commit(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, lc.CommitPlan()),
        ({"offers": {D: 99.0}}, lc.CommitPlan(add=(D,))),
        ({"heard": {B: 95.0, C: 60.0}}, lc.CommitPlan(remove=(2,))),
        # A member added recently is not timed out before it could say HELLO.
        ({"heard": {B: 95.0}, "since": {A: 0.0, B: 0.0, C: 80.0}}, lc.CommitPlan()),
        ({"heard": {B: 95.0}}, lc.CommitPlan(remove=(2,))),
        # A KeyPackage from a member newer than its entry: it restarted; replace its leaf.
        ({"offers": {B: 99.0}}, lc.CommitPlan(add=(B,), remove=(1,))),
        ({"offers": {B: 99.0}, "since": {A: 0.0, B: 99.5, C: 0.0}}, lc.CommitPlan()),
        ({"expired": (1,)}, lc.CommitPlan(remove=(1,))),
        ({"expired": (0,)}, lc.CommitPlan()),
        ({"epoch_since": 100.0 - 3600.0}, lc.CommitPlan(rekey=True)),
        # Adds and removals already start a new epoch: no separate rekey.
        ({"epoch_since": 0.0, "offers": {D: 99.0}}, lc.CommitPlan(add=(D,))),
        # Members' Update proposals: committed once the epoch is update_batch old,
        # at once with anything else.
        ({"updates": True, "update_batch": 5.0}, lc.CommitPlan(updates=True)),
        ({"updates": True, "update_batch": 20.0}, lc.CommitPlan()),
        (
            {"updates": True, "update_batch": 20.0, "offers": {D: 99.0}},
            lc.CommitPlan(add=(D,), updates=True),
        ),
    ],
)
def test_commit_plan(change: dict[str, object], expected: lc.CommitPlan) -> None:
    assert _plan(**change) == expected


def test_empty_plan_is_empty_and_others_are_not() -> None:
    assert lc.CommitPlan().empty
    assert not lc.CommitPlan(rekey=True).empty
    assert not lc.CommitPlan(updates=True).empty


def test_self_update_is_due_after_a_jittered_interval_and_proposed_once_per_epoch() -> None:
    draws = iter([0.0, 1.0 - 1e-9])
    su = lc.SelfUpdate(100.0, rng=lambda: next(draws))
    assert not su.should_propose(now=0.0, epoch=1)
    su.refreshed(10.0)  # due at 10 + 75
    assert not su.should_propose(now=84.0, epoch=1)
    assert su.should_propose(now=85.0, epoch=1)
    su.proposed(1)
    assert not su.should_propose(now=90.0, epoch=1)
    # The epoch moved on without our Update in it: propose again.
    assert su.should_propose(now=90.0, epoch=2)
    su.refreshed(90.0)  # committed; next due just before 90 + 100
    assert not su.should_propose(now=189.0, epoch=2)
    assert su.should_propose(now=190.0, epoch=2)


G1 = lc.GroupView(b"\x01" * 16, 3)
G2 = lc.GroupView(b"\x02" * 16, 3)
G3 = lc.GroupView(b"\x03" * 16, 5)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(G1, G2, G1), (G2, G1, G1), (G1, G3, G3), (G3, G2, G3), (G1, G1, G1)],
)
def test_the_larger_group_then_the_lower_tag_wins(
    a: lc.GroupView, b: lc.GroupView, expected: lc.GroupView
) -> None:
    assert lc.winner(a, b) == expected


@pytest.mark.parametrize(
    ("mine", "heard", "expected"),
    [
        (G1, [], None),
        (G1, [G1], None),
        (G1, [G2], None),
        (G2, [G1], G1),
        (G1, [G2, G3], G3),
        (G3, [G1, G2], None),
    ],
)
def test_members_move_only_to_a_winning_group(
    mine: lc.GroupView, heard: list[lc.GroupView], expected: lc.GroupView | None
) -> None:
    assert lc.should_move(mine, heard) == expected


@pytest.mark.parametrize(
    ("mine", "theirs", "expected"),
    [
        ((3, b"\x05"), (3, b"\x05"), False),
        ((3, b"\x05"), (4, b"\x09"), True),
        ((4, b"\x05"), (3, b"\x01"), False),
        ((3, b"\x05"), (3, b"\x01"), True),
        ((3, b"\x01"), (3, b"\x05"), False),
    ],
)
def test_out_of_sync_when_behind_or_on_the_losing_fork(
    mine: tuple[int, bytes], theirs: tuple[int, bytes], expected: bool
) -> None:
    assert lc.out_of_sync(lc.EpochView(*mine), lc.EpochView(*theirs)) is expected


@pytest.mark.parametrize(
    ("groups", "connected_for", "expected"),
    [(0, 10.0, True), (0, 1.0, False), (1, 10.0, False)],
)
def test_a_joiner_founds_the_group_only_when_it_hears_none(
    groups: int, connected_for: float, expected: bool
) -> None:
    assert (
        lc.should_create(heard_groups=groups, connected_for=connected_for, join_wait=5.0)
        is expected
    )


@pytest.mark.parametrize(
    ("members", "interval"), [(0, 10.0), (10, 10.0), (200, 10.0), (400, 20.0), (1000, 50.0)]
)
def test_hello_interval_grows_with_the_group_to_bound_its_hellos(
    members: int, interval: float
) -> None:
    s = lc.PrivateSettings(rekey_interval_s=3600, member_timeout_s=30, epoch_grace_s=10)
    assert s.hello_interval_for(members) == interval
    assert s.member_timeout_for(members) == 3 * interval
    assert members / s.hello_interval_for(members) <= lc.HELLO_BUDGET_PER_S


@pytest.mark.parametrize(("timeout", "wait", "jitter"), [(30, 1.0, 1.0), (1.2, 0.8, 0.4)])
def test_founding_waits_about_a_round_trip_not_a_hello_interval(
    timeout: float, wait: float, jitter: float
) -> None:
    s = lc.PrivateSettings(rekey_interval_s=3600, member_timeout_s=timeout, epoch_grace_s=10)
    assert s.join_wait_s == pytest.approx(wait)
    assert s.join_jitter_s == pytest.approx(jitter)
