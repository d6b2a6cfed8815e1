"""Private VLAN benchmark (`make bench-private`): time to the first ping, and rekey cost.

1. Cold start (netns lab, needs root): a star of N members (default 10) around one
   relay; every member holds a credential for the private VLAN; settings are the
   defaults unless --timeouts names member_timeout_s values. All `peertap run`
   processes start at once (t = 0); reported:
     ready      every node answers /readyz
     trunks     every member's trunk is up (the last one, by the nodes' logs)
     ping       the first ICMP echo reply from m1 to mN over the VLAN (a continuous
                `ping -D -i 0.1` started once m1 is ready; its reply time stamp)
     one group  every member logged the epoch all N share (by the nodes' logs)
   and "group after trunks": one group minus trunks (target: 3 s or less).

2. Join an existing group (same lab with N + 1 members): N members form their group,
   then the last one starts; reported from its trunk coming up (by its log): when its
   Welcome arrived, its first echo reply from m1 (a `ping -D` started as soon as its
   interface exists; target: 2 s or less) and when all N + 1 logged the epoch they
   share. Times of trunks, Welcomes and epochs come from the nodes' own log stamps:
   polling /status spawns a process per call and lags by seconds on a loaded machine.

3. Rekey (one process, real MLS group code and frame-key install as PrivateVlan does
   it): a group of M members (default 50), built with one add-only Commit and a
   Welcome per member, then a warm-up round in which every member's Update is
   committed (every leaf refreshed, as after one rekey interval). Then, median of
   --repeat rounds:
     commit     the committer's empty Commit with path (periodic rekey), serialised
     process    one member's Group.process of it plus exporting and installing the
                new frame key (MlsKeyProvider.install)
     all        the sum over the M - 1 members: CPU time the whole group spends
     update     one member's Update round: propose, every member stores the proposal,
                the committer commits it (by reference), every member processes
   and the size of the Commit and the number of HPKE ciphertexts in its UpdatePath.
   Only the committer commits, and an Update blanks the parent nodes on its member's
   path, so parents off the committer's path stay blank and each UpdatePath encrypts
   to nearly every member: the cost grows linearly with the group.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peertap.sidecar import identity, ids
from peertap.sidecar.config import VlanConfig
from peertap.sidecar.crypto.mls_keys import MlsKeyProvider, frame_key_from_exporter
from peertap.sidecar.lab import Lab, topology
from peertap.sidecar.lab.nodes import CREATOR_KEY
from peertap.sidecar.mls import Group, GroupOptions, KeyPackageBundle, make_key_package
from peertap.sidecar.mls.structs import Commit, Credential, PublicMessage
from peertap.sidecar.private import authority

SUITE = 1
LABEL = "lab"
VLAN = ids.vlan_id(bytes(32), LABEL)
HANG_GUARD_S = 180.0
DEFAULT_TIMEOUT_S = VlanConfig.model_fields["member_timeout_s"].default


class BenchError(Exception):
    """The lab or the group did not reach the state the benchmark waits for."""


# ---- 1. start-up in a netns lab ------------------------------------------------------------


@dataclass
class StartupResult:
    members: int
    member_timeout_s: float
    ready_s: float
    trunks_s: float  # every member has a trunk (nodes' logs)
    first_ping_s: float
    one_group_s: float  # every member logged the epoch they share (nodes' logs)

    @property
    def group_after_trunks_s(self) -> float:
        return self.one_group_s - self.trunks_s


@dataclass
class JoinResult:
    members: int
    member_timeout_s: float
    welcomed_s: float  # after the joiner's trunk came up (its log)
    first_ping_s: float  # likewise
    one_group_s: float  # every member logged the epoch with the joiner


def wait_for(what: str, check: Callable[[], bool], *, started: float, every: float = 0.1) -> float:
    """Seconds since `started` when `check` first held (polled every `every` s)."""
    while not check():
        if time.monotonic() - started > HANG_GUARD_S:
            raise BenchError(f"no {what} after {HANG_GUARD_S:.0f} s")
        time.sleep(every)
    return time.monotonic() - started


def statuses(lab: Lab, pods: Sequence[str]) -> list[Any] | None:
    """Every pod's /status, fetched in parallel (one at a time lags by seconds under load)."""
    try:
        with ThreadPoolExecutor(max_workers=len(pods)) as pool:
            return list(pool.map(lab.status, pods))
    except Exception:
        return None  # a node not serving /status yet


def all_have_trunks(lab: Lab, pods: Sequence[str]) -> bool:
    docs = statuses(lab, pods)
    return docs is not None and all(d["peers"] for d in docs)


def one_group_of(lab: Lab, pods: Sequence[str]) -> bool:
    docs = statuses(lab, pods)
    if docs is None:
        return False
    views = [d["vlans"][0] for d in docs]
    return (
        all(v["mls_state"] == "member" and v["members"] == len(pods) for v in views)
        and len({(v["epoch"], v["mls_id"]) for v in views}) == 1
    )


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (.*)$")


def logged_at(lab: Lab, pod: str, needle: str) -> float | None:
    """Wall time (s since the epoch) of the node's first log line containing `needle`:
    the nodes' own time stamps, free of the lag of polling them."""
    for line in lab.log_path(pod).read_text(errors="replace").splitlines():
        found = LOG_LINE.match(line)
        if found and needle in found.group(2):
            return dt.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def group_logged_at(lab: Lab, pods: Sequence[str]) -> float:
    """When the last of `pods` logged the epoch they now share (polled /status for it)."""
    mls_id = lab.status(pods[0])["vlans"][0]["mls_id"]
    times = [logged_at(lab, p, f"mls-id {mls_id}") for p in pods]
    if any(t is None for t in times):
        raise BenchError("a member did not log the shared epoch")
    return max(t for t in times if t is not None)


def ping_reader(
    lab: Lab, pod: str, target: str, *, retry: bool = False
) -> tuple[subprocess.Popen[str], list[float | None], threading.Thread]:
    argv = ["ping", "-D", "-n", "-i", "0.1", "-W", "1", lab.overlay_address(target)]
    if retry:
        argv = ["sh", "-c", f"until {' '.join(argv)}; do sleep 0.02; done"]
    ping = lab.spawn(pod, argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    reply: list[float | None] = []
    reader = threading.Thread(target=lambda: reply.append(first_reply(ping)), daemon=True)
    reader.start()
    return ping, reply, reader


def private_star(members: int, member_timeout_s: float | None, state_dir: Path) -> Lab:
    lab = Lab.up(topology("star", members=members), state_dir=state_dir, start_nodes=False)
    creator = identity.load(Path(lab.state_dir) / CREATOR_KEY)
    now = dt.datetime.now(dt.UTC)
    for pod in lab.pods:
        if not pod.startswith("m"):
            continue
        cfg_path = lab.config_path(pod)
        cfg = json.loads(cfg_path.read_text())
        vlan = cfg["vlans"][0]
        cred = authority.issue(
            authority=creator,
            member_identity=f"bench/{pod}",
            member_key=identity.load(lab.key_path(pod)).public_bytes,
            vlan_id=ids.vlan_id(creator.public_bytes, vlan["label"]),
            issued=now - dt.timedelta(hours=1),
            expires=now + dt.timedelta(days=1),
        )
        (cfg_path.parent / "lab.cred").write_bytes(cred.encode())
        vlan.update(security="mls", credential="lab.cred")
        if member_timeout_s is not None:
            vlan["member_timeout_s"] = member_timeout_s
        cfg_path.write_text(json.dumps(cfg))
    return lab


def first_reply(ping: subprocess.Popen[str]) -> float | None:
    """The wall time stamp (ping -D) of the first echo reply `ping` prints."""
    assert ping.stdout is not None
    for line in ping.stdout:
        found = re.match(r"\[(\d+\.\d+)\] \d+ bytes from", line)
        if found:
            return float(found.group(1))
    return None


def measure_startup(members: int, member_timeout_s: float | None) -> StartupResult:
    state = Path(tempfile.mkdtemp(prefix="bench-private-"))
    lab = private_star(members, member_timeout_s, state / "lab")
    try:
        pods = [f"m{i}" for i in range(1, members + 1)]
        target = pods[-1]
        wall0, started = time.time(), time.monotonic()
        for pod in lab.pods:
            lab.start_node(pod)
        lab.wait_ready(timeout=HANG_GUARD_S, pods=["m1"])
        ping, reply, reader = ping_reader(lab, "m1", target)
        wait_for("trunks", lambda: all_have_trunks(lab, pods), started=started, every=0.2)
        lab.wait_ready(timeout=HANG_GUARD_S)
        ready_s = time.monotonic() - started
        wait_for("group of all members", lambda: one_group_of(lab, pods), started=started)
        trunk_times = [logged_at(lab, p, "trunk up") for p in pods]
        if any(t is None for t in trunk_times):
            raise BenchError("a member did not log its trunk")
        trunks_s = max(t for t in trunk_times if t is not None) - wall0
        group_s = group_logged_at(lab, pods) - wall0
        reader.join(timeout=HANG_GUARD_S)
        ping.terminate()
        ping.wait()
        if not reply or reply[0] is None:
            raise BenchError("ping never got a reply")
        return StartupResult(
            members, member_timeout_s or DEFAULT_TIMEOUT_S, ready_s, trunks_s,
            reply[0] - wall0, group_s,
        )  # fmt: skip
    finally:
        lab.down()
        shutil.rmtree(state, ignore_errors=True)


def measure_join(members: int, member_timeout_s: float | None) -> JoinResult:
    """N members form a group; then member N + 1 starts and joins it."""
    state = Path(tempfile.mkdtemp(prefix="bench-private-"))
    lab = private_star(members + 1, member_timeout_s, state / "lab")
    try:
        pods = [f"m{i}" for i in range(1, members + 2)]
        joiner = pods[-1]
        started = time.monotonic()
        for pod in lab.pods:
            if pod != joiner:
                lab.start_node(pod)
        wait_for(
            "group of the first members", lambda: one_group_of(lab, pods[:-1]), started=started
        )
        lab.start_node(joiner)
        started = time.monotonic()
        # Pinging from the moment the joiner's interface exists (ping fails before that).
        ping, reply, reader = ping_reader(lab, joiner, "m1", retry=True)
        wait_for("group with the joiner", lambda: one_group_of(lab, pods), started=started)
        reader.join(timeout=HANG_GUARD_S)
        ping.terminate()
        ping.wait()
        if not reply or reply[0] is None:
            raise BenchError("ping never got a reply")
        trunk_at = logged_at(lab, joiner, "trunk up")
        welcomed_at = logged_at(lab, joiner, "joined at epoch")
        if trunk_at is None or welcomed_at is None:
            raise BenchError("the joiner did not log its trunk or its Welcome")
        return JoinResult(
            members,
            member_timeout_s or DEFAULT_TIMEOUT_S,
            welcomed_at - trunk_at,
            reply[0] - trunk_at,
            group_logged_at(lab, pods) - trunk_at,
        )
    finally:
        lab.down()
        shutil.rmtree(state, ignore_errors=True)


# ---- 2. rekey of a large group in one process ----------------------------------------------


@dataclass
class RekeyResult:
    members: int
    setup_s: float
    path_ciphertexts: int
    commit_ms: float
    process_ms: float
    all_ms: float
    update_ms: float
    commit_bytes: int


@dataclass
class Member:
    group: Group
    keys: MlsKeyProvider

    def install(self) -> None:
        self.keys.install(
            epoch=self.group.epoch,
            frame_key=frame_key_from_exporter(self.group.export_secret, VLAN),
        )


def _bundle(i: int) -> KeyPackageBundle:
    node = identity.generate()
    return make_key_package(
        SUITE, signature_private=node.seed, credential=Credential.basic(b"bench/m%d" % i)
    )


def _check(members: Sequence[Member]) -> None:
    if len({m.keys.current().mls_id for m in members}) != 1:
        raise BenchError("members disagree on the frame key")


def _rekey(members: list[Member]) -> tuple[float, float, float, int, int]:
    """One periodic rekey: (commit ms, median process ms, sum of process ms, Commit bytes,
    UpdatePath ciphertexts)."""
    committer, rest = members[0], members[1:]
    t = time.perf_counter()
    message = committer.group.commit(path=True).commit_message
    commit = message.encode()
    committer.install()
    commit_ms = (time.perf_counter() - t) * 1e3
    times = []
    for m in rest:
        t = time.perf_counter()
        m.group.process(commit)
        m.install()
        times.append((time.perf_counter() - t) * 1e3)
    _check(members)
    body = message.body
    assert isinstance(body, PublicMessage) and isinstance(body.content.content, Commit)
    path = body.content.content.path
    cts = sum(len(n.encrypted_path_secret) for n in path.nodes) if path else 0
    return commit_ms, statistics.median(times), sum(times), len(commit), cts


def _update_round(members: list[Member], proposer: Member) -> float:
    """Wall ms of one member's self-update, every member doing its part in turn."""
    t = time.perf_counter()
    proposal = proposer.group.propose_update().encode()
    for m in members:
        if m is not proposer:
            m.group.process(proposal)
    commit = members[0].group.commit(path=True).commit_message.encode()
    members[0].install()
    for m in members[1:]:
        m.group.process(commit)
        m.install()
    _check(members)
    return (time.perf_counter() - t) * 1e3


def measure_rekey(size: int, repeat: int) -> RekeyResult:
    started = time.perf_counter()
    options = GroupOptions(ratchet_tree_in_group_info=False)
    node = identity.generate()
    creator = Group.create(
        SUITE, signature_private=node.seed, credential=Credential.basic(b"bench/m0")
    )
    bundles = [_bundle(i) for i in range(1, size)]
    setup = creator.commit(add=[b.key_package for b in bundles], path=False)
    assert setup.welcome is not None
    welcome, tree = setup.welcome.encode(), creator.ratchet_tree.encode()

    def member(group: Group) -> Member:
        m = Member(group, MlsKeyProvider(vlan_id=VLAN, grace_s=10))
        m.install()
        return m

    members = [member(creator)]
    members += [member(Group.join_from_welcome(welcome, b, tree, options=options)) for b in bundles]
    _check(members)
    _rekey(members)
    for proposer in members[1:]:
        _update_round(members, proposer)  # warm-up: every leaf refreshed, the tree is full
    setup_s = time.perf_counter() - started
    rounds = [_rekey(members) for _ in range(repeat)]
    updates = [_update_round(members, members[1 + i % (size - 1)]) for i in range(repeat)]
    return RekeyResult(
        members=size,
        setup_s=setup_s,
        path_ciphertexts=rounds[-1][4],
        commit_ms=statistics.median(r[0] for r in rounds),
        process_ms=statistics.median(r[1] for r in rounds),
        all_ms=statistics.median(r[2] for r in rounds),
        update_ms=statistics.median(updates),
        commit_bytes=rounds[-1][3],
    )


# ---- report ---------------------------------------------------------------------------------


def startup_table(results: Sequence[StartupResult]) -> str:
    header = (
        f"{'members':>8} {'timeout s':>10} {'ready s':>8} {'trunks s':>9} {'1st ping s':>11}"
        f" {'one group s':>12} {'group after trunks s':>21}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.members:>8} {r.member_timeout_s:>10g} {r.ready_s:>8.1f} {r.trunks_s:>9.1f}"
            f" {r.first_ping_s:>11.1f} {r.one_group_s:>12.1f} {r.group_after_trunks_s:>21.1f}"
        )
    return "\n".join(lines)


def join_table(results: Sequence[JoinResult]) -> str:
    header = (
        f"{'group of':>8} {'timeout s':>10} {'welcomed s':>11} {'1st ping s':>11}"
        f" {'one group s':>12}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.members:>8} {r.member_timeout_s:>10g} {r.welcomed_s:>11.2f}"
            f" {r.first_ping_s:>11.2f} {r.one_group_s:>12.2f}"
        )
    return "\n".join(lines)


def rekey_table(r: RekeyResult) -> str:
    rows = [
        ("members", f"{r.members}"),
        ("setup (joins, warm-up updates)", f"{r.setup_s:.1f} s"),
        ("rekey: committer commit + install", f"{r.commit_ms:.1f} ms"),
        ("rekey: one member process + install", f"{r.process_ms:.1f} ms"),
        ("rekey: all members together (CPU)", f"{r.all_ms:.0f} ms"),
        ("self-update round, whole group (CPU)", f"{r.update_ms:.0f} ms"),
        ("rekey Commit size", f"{r.commit_bytes:,} B"),
        ("HPKE ciphertexts in its UpdatePath", f"{r.path_ciphertexts}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v:>12}" for k, v in rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=10, help="lab members (default 10)")
    parser.add_argument(
        "--timeouts",
        default="",
        help="comma-separated member_timeout_s values for the lab (default: the default)",
    )
    parser.add_argument("--rekey-members", type=int, default=50, help="group size (default 50)")
    parser.add_argument("--repeat", type=int, default=5, help="rekey rounds; medians reported")
    parser.add_argument("--skip-lab", action="store_true", help="only the in-process rekey part")
    parser.add_argument("--skip-rekey", action="store_true", help="only the lab parts")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {}
    if not args.skip_lab:
        timeouts = [float(x) for x in args.timeouts.split(",") if x.strip()] or [None]
        startup, joins = [], []
        for timeout in timeouts:
            what = "defaults" if timeout is None else f"member_timeout_s {timeout:g}"
            print(f"cold start: {args.members} members, {what} ...", flush=True)
            startup.append(measure_startup(args.members, timeout))
            print(f"join: one member joins {args.members}, {what} ...", flush=True)
            joins.append(measure_join(args.members, timeout))
        print()
        print("cold start (t = 0 when the nodes are started; 1st ping: first echo reply m1 ->")
        print(f"m{args.members} over the private VLAN; target: one group <= 3 s after the trunks)")
        print(startup_table(startup))
        print()
        print("join an existing group (t = 0 when the joiner's trunk is up, by its log; 1st ping:")
        print("its first echo reply from m1, target <= 2 s; one group: every member logged the")
        print("epoch that took the joiner in)")
        print(join_table(joins))
        print()
        report["startup"] = [vars(r) for r in startup]
        report["join"] = [vars(r) for r in joins]
    if not args.skip_rekey:
        print(f"rekey: {args.rekey_members} members in one process ...", flush=True)
        rekey = measure_rekey(args.rekey_members, args.repeat)
        print()
        print(rekey_table(rekey))
        report["rekey"] = vars(rekey)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
