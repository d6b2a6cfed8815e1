"""Private VLAN groups at scale, in one process: the simulator's mesh (`private.sim`) runs
real PrivateVlan members (real MLS, signed and encoded CONTROL packets, PARTs, relay
HELLO caches) on trio's virtual clock.

Deadlines below are virtual seconds and stand for protocol rounds, not machine speed:
with `member_timeout_s` 300 a periodic HELLO comes only every 100 s, so finishing well
before that shows that answers, not timers, did the work."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence

import pytest
import trio
import trio.testing
from sim_runs import run_mesh, total

from peertap.sidecar.private import chunks
from peertap.sidecar.private import messages as m
from peertap.sidecar.private.lifecycle import PrivateSettings
from peertap.sidecar.private.sim import Mesh, Sim, SimMember

SLOW_HELLOS = PrivateSettings(rekey_interval_s=3600.0, member_timeout_s=300.0, epoch_grace_s=10.0)
HELLO_S = SLOW_HELLOS.hello_interval_s  # 100 s
PEERTAP = [sys.executable, "-P", "-m", "peertap.sidecar.cli"]


def run(
    fn: Callable[[Mesh], Awaitable[None]],
    *,
    settings: PrivateSettings = SLOW_HELLOS,
    relays: int = 2,
    hop_latency_s: float = 0.002,
    relay_answers: bool = True,
) -> None:
    run_mesh(
        fn,
        relays=relays,
        settings=settings,
        hop_latency_s=hop_latency_s,
        seed=7,
        relay_answers=relay_answers,
    )


async def formed(mesh: Mesh, size: int) -> list[SimMember]:
    members = [mesh.add() for _ in range(size)]
    assert await mesh.until_converged(HELLO_S / 4) is not None
    return members


def test_members_that_start_together_form_one_group_before_any_periodic_hello() -> None:
    async def scenario(mesh: Mesh) -> None:
        await formed(mesh, 12)
        assert len(mesh.views()) == 1

    run(scenario)


def test_founding_races_converge_into_one_group() -> None:
    async def scenario(mesh: Mesh) -> None:
        # Hops slower than the founding jitter: several members found a group at once.
        await formed(mesh, 10)
        assert total(mesh, "mvlan_groups_founded") > 1
        assert len(mesh.views()) == 1

    run(scenario, hop_latency_s=1.0)


@pytest.mark.parametrize("relay_answers", [True, False])
def test_a_joiner_is_answered_at_once_instead_of_waiting_for_a_hello(relay_answers: bool) -> None:
    """By the relays' caches of group HELLOs, or else by the committer."""

    async def scenario(mesh: Mesh) -> None:
        await formed(mesh, 10)
        await trio.sleep(1)
        answers = total(mesh, "mvlan_hello_answers")
        joiner = mesh.add()
        assert await mesh.until_converged(HELLO_S / 20) is not None
        assert joiner.pv.view() is not None
        assert joiner.counters.events["mvlan_groups_founded"] == 0
        if not relay_answers:
            assert total(mesh, "mvlan_hello_answers") > answers

    run(scenario, relay_answers=relay_answers)


def test_k_groups_merge_in_one_round_when_connectivity_returns() -> None:
    async def scenario(mesh: Mesh) -> None:
        parts = [[mesh.add() for _ in range(3)] for _ in range(4)]
        for part, members in enumerate(parts):
            for x in members:
                x.part = part
        assert await _each_part_formed(mesh, parts)
        assert len({x.pv.tag for members in parts for x in members}) == 4
        everyone = [x for members in parts for x in members]
        # A founding race inside a part already moved some members: count from the heal.
        before = [_rejoins(x) for x in everyone]
        mesh.heal()
        assert await mesh.until_converged(HELLO_S / 20) is not None
        # One round: every member moved to another group at most once.
        after = [_rejoins(x) - b for x, b in zip(everyone, before, strict=True)]
        assert all(n <= 1 for n in after), after
        assert total(mesh, "mvlan_malformed", drops=True) == 0
        assert total(mesh, "mvlan_commit_rejected", drops=True) == 0

    run(scenario)


def test_a_group_split_three_ways_heals_in_one_round() -> None:
    async def scenario(mesh: Mesh) -> None:
        members = await formed(mesh, 9)
        parts = [members[0:3], members[3:6], members[6:9]]
        for part, xs in enumerate(parts):
            for x in xs:
                x.part = part
        # Each third removes the others (after the member timeout) and carries on: three
        # branches of one group, at different epochs.
        await trio.sleep(SLOW_HELLOS.member_timeout_s + 2 * HELLO_S)
        assert await _each_part_formed(mesh, parts)
        assert len({x.pv.view() for x in members}) == 3
        before = [_rejoins(x) for x in members]
        mesh.heal()
        assert await mesh.until_converged(HELLO_S / 20) is not None
        assert all(_rejoins(x) - b <= 1 for x, b in zip(members, before, strict=True))
        assert total(mesh, "mvlan_malformed", drops=True) == 0
        assert total(mesh, "mvlan_commit_rejected", drops=True) == 0

    run(scenario)


def _rejoins(x: SimMember) -> int:
    return x.counters.events["mvlan_group_moves"] + x.counters.events["mvlan_resyncs"]


async def _each_part_formed(mesh: Mesh, parts: list[list[SimMember]]) -> bool:
    with trio.move_on_after(HELLO_S):
        while True:
            views = [{x.pv.view() for x in xs} for xs in parts]
            if all(len(v) == 1 and None not in v for v in views):
                return all(
                    next(iter(v))[3] == len(xs)  # type: ignore[index]
                    for v, xs in zip(views, parts, strict=True)
                )
            await trio.sleep(0.25)
    return False


def test_a_commit_that_cannot_be_sent_leaves_the_group_at_its_epoch_and_the_offer_intact() -> None:
    async def scenario(mesh: Mesh) -> None:
        members = await formed(mesh, 3)
        before = mesh.views()
        refused: list[int] = []

        def refuse(sender: SimMember, msgs: Sequence[tuple[int, bytes]]) -> bool:
            # A Welcome travels DIRECTED toward its joiner.
            if any(kind in (m.WELCOME, m.DIRECTED) for kind, _ in msgs):
                refused.append(len(msgs))
                return True
            return False

        mesh.refuse = refuse
        joiner = mesh.add()
        await trio.sleep(5)
        assert refused
        # No member moved on: the committer did not install the epoch it could not send.
        assert {x.pv.view() for x in members} == set(before)
        assert {x.pv.keys.current().epoch for x in members} == {next(iter(before))[1]}  # type: ignore[index]
        assert total(mesh, "mvlan_commit_unsent", drops=True) == len(refused)
        assert joiner.pv.view() is None
        mesh.refuse = lambda sender, msgs: False
        # The joiner's offer is still there: it gets in without publishing again (that
        # would take a HELLO interval).
        assert await mesh.until_converged(HELLO_S / 20) is not None

    run(scenario)


@pytest.mark.parametrize("members", [75, 200])
def test_groups_at_the_old_limit_and_well_past_it_form_with_messages_in_parts(members: int) -> None:
    """One CONTROL packet held a Welcome of about 75 members; now Welcomes and Commits of
    any size travel as PARTs."""
    report = Sim(members=members, relays=2, steady_s=1.0).run()
    assert report.converged == members and report.distinct_mls_ids == 1
    assert report.drops.get("control_too_large", 0) == 0
    assert report.drops.get("mvlan_malformed", 0) == 0
    if members > 100:
        assert report.largest_message > 2 * chunks.BODY_MAX


def test_periodic_control_traffic_per_member_stays_bounded_as_the_group_grows() -> None:
    # A small HELLO budget makes the bound show at small sizes: 2 HELLOs/s per group.
    settings = PrivateSettings(
        rekey_interval_s=3600.0, member_timeout_s=30.0, epoch_grace_s=10.0, hello_budget_per_s=2
    )
    small = Sim(members=20, relays=1, steady_s=120.0, settings=settings).run()
    large = Sim(members=40, relays=1, steady_s=120.0, settings=settings).run()
    assert small.distinct_mls_ids == large.distinct_mls_ids == 1
    # Twice the members, the same traffic reaching each member; each sends half as much.
    assert large.rx_bytes_per_member_per_min <= 1.15 * small.rx_bytes_per_member_per_min
    assert large.tx_bytes_per_member_per_min <= 0.6 * small.tx_bytes_per_member_per_min


def test_the_simulator_command_prints_the_figures_of_a_churning_group() -> None:
    out = subprocess.run(
        [
            *PEERTAP, "sim", "private", "--members", "12", "--relays", "2", "--churn", "6",
            "--churn-for", "60", "--steady", "20", "--json",
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["converged"] == report["members"] == 12
    assert report["distinct_mls_ids"] == 1
    assert report["largest_packet"] > 0 and report["rx_bytes_per_member_per_min"] > 0
    # Three members stopped and three started, each join and removal timed.
    assert len(report["joins_s"]) == 3 and len(report["removals_s"]) == 3
