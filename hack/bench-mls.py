"""MLS group benchmark (`make bench-mls`): commit, process and join timings by group size.

For cipher suite 1 (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519) and each
group size N, three members are followed through a Commit (with path) that
adds one member:

  commit   the committer (leaf 0): Group.commit(add=[kp]) and serialising the
           Commit and the Welcome to bytes
  process  an existing member (the last one added in setup): Group.process()
           of the Commit's bytes
  join     the new member: Group.join_from_welcome() of the Welcome's bytes,
           with the ratchet tree in the GroupInfo's ratchet_tree extension
           (default) or given out of band (--tree-out-of-band)

and the size of ``Group.save()`` of the existing member once it processed the
Commit. After each measurement the committer removes the new member again
(untimed; the existing member processes that Commit too) so every repetition
starts from an N-member group. Each time is the median of --repeat runs.

Setup: the creator adds the other N - 1 members in one add-only Commit
without path, the existing member joins from that Welcome. That is linear in N
(one Welcome entry and KeyPackage check per member); a Commit with path would
encrypt to every member already in the tree. The resulting tree has blank
parent nodes off the committer's direct path, so a Commit's UpdatePath holds a
ciphertext for nearly every member: the committer's worst case, and the tree a
group has until its members commit or update themselves.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from peertap.sidecar.mls import Group, GroupOptions, KeyPackageBundle, make_key_package
from peertap.sidecar.mls.suites import get_suite

SUITE_ID = 1
DEFAULT_SIZES = (10, 100, 1_000, 10_000)
DEFAULT_REPEAT = 5
TARGET_MEMBERS = 1_000
TARGET_PROCESS_MS = 50.0


class BenchError(Exception):
    """The members disagree on the group after a Commit (a broken group, not a slow one)."""


@dataclass
class SizeResult:
    members: int
    setup_s: float
    key_packages_s: float
    setup_commit_s: float
    setup_join_s: float
    commit_ms: float
    process_ms: float
    join_ms: float
    state_bytes: int
    joiner_state_bytes: int
    commit_bytes: int
    welcome_bytes: int
    path_ciphertexts: int
    samples_ms: dict[str, list[float]] = field(default_factory=dict)


def _start() -> float:
    """perf_counter after a collection, so garbage of earlier steps is not billed to the next."""
    gc.collect()
    return time.perf_counter()


def _key_package(name: bytes) -> KeyPackageBundle:
    signer = get_suite(SUITE_ID).generate_signature_key_pair()[0]
    return make_key_package(SUITE_ID, identity=name, signature_private=signer)


def _check_agree(groups: Sequence[Group], what: str) -> None:
    if len({(g.epoch, g.epoch_authenticator) for g in groups}) != 1:
        raise BenchError(f"members disagree on the epoch after {what}")


def _add_and_remove(
    creator: Group, observer: Group, newcomer: KeyPackageBundle, *, options: GroupOptions
) -> tuple[dict[str, float], dict[str, int]]:
    """One timed add of ``newcomer`` (milliseconds, sizes), then its untimed removal."""
    start = _start()
    added = creator.commit(add=[newcomer.key_package])
    commit_msg = added.commit_message.encode()
    welcome_msg = added.welcome.encode() if added.welcome is not None else b""
    t_commit = time.perf_counter() - start
    out_of_band = not options.ratchet_tree_in_group_info
    tree = creator.ratchet_tree.encode() if out_of_band else None
    start = _start()
    processed = observer.process(commit_msg)
    t_process = time.perf_counter() - start
    start = _start()
    joiner = Group.join_from_welcome(welcome_msg, newcomer, tree, options=options)
    t_join = time.perf_counter() - start
    _check_agree([creator, observer, joiner], "the add commit")
    path = processed.commit.path if processed.commit is not None else None
    sizes = {
        "state": len(observer.save()),
        "joiner_state": len(joiner.save()),
        "commit": len(commit_msg),
        "welcome": len(welcome_msg),
        "ciphertexts": sum(len(n.encrypted_path_secret) for n in path.nodes) if path else 0,
    }
    removal = creator.commit(remove=[joiner.own_leaf_index])
    observer.process(removal.commit_message.encode())
    _check_agree([creator, observer], "the remove commit")
    times = {"commit": t_commit * 1e3, "process": t_process * 1e3, "join": t_join * 1e3}
    return times, sizes


def measure(members: int, *, repeat: int, tree_out_of_band: bool) -> SizeResult:
    """Build a ``members``-member group and time ``repeat`` add-one-member Commits."""
    options = GroupOptions(ratchet_tree_in_group_info=not tree_out_of_band)
    # Each Welcome entry is sealed with the encrypted GroupInfo as HPKE context
    # (RFC 9420 12.4.3.1), so with the tree inside it adding N members costs
    # O(N^2) hashing; the setup Welcome therefore leaves the tree out.
    setup_options = GroupOptions(ratchet_tree_in_group_info=False)
    setup_start = time.perf_counter()
    start = _start()
    bundles = [_key_package(b"m%d" % i) for i in range(1, members)]
    kp_s = time.perf_counter() - start
    creator = Group.create(
        SUITE_ID,
        identity=b"m0",
        signature_private=get_suite(SUITE_ID).generate_signature_key_pair()[0],
        options=setup_options,
    )
    start = _start()
    setup = creator.commit(add=[b.key_package for b in bundles], path=False)
    commit_s = time.perf_counter() - start
    assert setup.welcome is not None
    welcome = setup.welcome.encode()
    start = _start()
    observer = Group.join_from_welcome(
        welcome, bundles[-1], creator.ratchet_tree.encode(), options=options
    )
    join_s = time.perf_counter() - start
    del setup, bundles, welcome
    creator = Group.restore(creator.save(), options)
    _check_agree([creator, observer], "setup")
    # Warm-up, untimed: the first path commit fills the committer's direct path
    # and the restored tree's hash caches; later repetitions all see this shape.
    _add_and_remove(creator, observer, _key_package(b"warm-up"), options=options)
    setup_s = time.perf_counter() - setup_start

    samples: dict[str, list[float]] = {"commit": [], "process": [], "join": []}
    sizes: dict[str, int] = {}
    for rep in range(repeat):
        newcomer = _key_package(b"new%d" % rep)
        times, sizes = _add_and_remove(creator, observer, newcomer, options=options)
        for name, value in times.items():
            samples[name].append(value)

    return SizeResult(
        members=members,
        setup_s=setup_s,
        key_packages_s=kp_s,
        setup_commit_s=commit_s,
        setup_join_s=join_s,
        commit_ms=statistics.median(samples["commit"]),
        process_ms=statistics.median(samples["process"]),
        join_ms=statistics.median(samples["join"]),
        state_bytes=sizes["state"],
        joiner_state_bytes=sizes["joiner_state"],
        commit_bytes=sizes["commit"],
        welcome_bytes=sizes["welcome"],
        path_ciphertexts=sizes["ciphertexts"],
        samples_ms=samples,
    )


def target_met(results: Sequence[SizeResult]) -> bool | None:
    """Whether processing a Commit at TARGET_MEMBERS is under the target; None if not measured."""
    for r in results:
        if r.members == TARGET_MEMBERS:
            return r.process_ms < TARGET_PROCESS_MS
    return None


def format_table(results: Sequence[SizeResult]) -> str:
    header = (
        f"{'members':>8} {'setup s':>8} {'commit ms':>10} {'process ms':>11} {'join ms':>9}"
        f" {'state B':>10} {'commit B':>10} {'welcome B':>10} {'path cts':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.members:>8,} {r.setup_s:>8.2f} {r.commit_ms:>10.1f} {r.process_ms:>11.1f}"
            f" {r.join_ms:>9.1f} {r.state_bytes:>10,} {r.commit_bytes:>10,}"
            f" {r.welcome_bytes:>10,} {r.path_ciphertexts:>9,}"
        )
    return "\n".join(lines)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from err
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError("group sizes must be at least 2")
    return sizes


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=list(DEFAULT_SIZES),
        help="comma-separated group sizes (default: 10,100,1000,10000)",
    )
    parser.add_argument(
        "--repeat", type=_positive, default=DEFAULT_REPEAT, help="runs per size; medians reported"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument(
        "--tree-out-of-band",
        action="store_true",
        help="give joiners the ratchet tree separately instead of in the GroupInfo",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tree_where = (
        "out of band" if args.tree_out_of_band else "in the GroupInfo ratchet_tree extension"
    )
    print(
        f"MLS cipher suite {SUITE_ID}, sizes {','.join(map(str, args.sizes))}, "
        f"median of {args.repeat}; joiners get the ratchet tree {tree_where}",
        flush=True,
    )
    started = time.perf_counter()
    results = []
    for members in args.sizes:
        result = measure(members, repeat=args.repeat, tree_out_of_band=args.tree_out_of_band)
        print(
            f"  {members:,} members: setup {result.setup_s:.1f} s (key packages "
            f"{result.key_packages_s:.1f} s, add-all commit {result.setup_commit_s:.1f} s, "
            f"existing member's join {result.setup_join_s:.1f} s, then a warm-up add/remove)",
            flush=True,
        )
        results.append(result)
    total_s = time.perf_counter() - started
    print()
    print(format_table(results))
    print()
    print(
        "commit: committer's Group.commit(add 1, with path) incl. serialising Commit and Welcome;"
        "\nprocess: an existing member's Group.process(Commit); join: Group.join_from_welcome;"
        "\nstate B: len(save()) of the existing member afterwards; path cts: HPKE ciphertexts"
        " in the UpdatePath"
        "\ntree: only the committer commits, so parent nodes off its path are blank and its"
        " UpdatePath encrypts to every other member (the committer's worst case)"
    )
    met = target_met(results)
    target = (
        f"processing a Commit in a {TARGET_MEMBERS:,}-member group under {TARGET_PROCESS_MS:g} ms"
    )
    if met is None:
        print(f"target ({target}): not measured (add {TARGET_MEMBERS} to --sizes)")
    else:
        measured = next(r.process_ms for r in results if r.members == TARGET_MEMBERS)
        print(f"target ({target}): {'MET' if met else 'NOT MET'} ({measured:.1f} ms)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"total {total_s:.0f} s on {os.cpu_count()} CPUs, load average {load:.1f} at the end")
    if args.json is not None:
        report = {
            "cipher_suite": SUITE_ID,
            "repeat": args.repeat,
            "ratchet_tree": "out_of_band" if args.tree_out_of_band else "group_info_extension",
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": load,
            "total_s": total_s,
            "target": {
                "members": TARGET_MEMBERS,
                "process_ms_below": TARGET_PROCESS_MS,
                "met": met,
            },
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
