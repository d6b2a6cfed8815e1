"""Memory of PeerTap nodes under the bench's load, for A/B comparisons (as root).

    .venv/bin/python -P hack/bench-memory.py [--topology relay|direct] [--rounds N]
        [--variant NAME:KEY=VALUE,KEY=VALUE ...] [--duration S] [--json FILE]

Each round runs every variant once, in turn, on a fresh lab (a - r - b; `relay`: r is
a pure relay, `direct`: a and b dial each other): the nodes start with the variant's
environment variables added (e.g. `PEERTAP_MALLOC=off`, `PEERTAP_QUEUE_BYTES`-style
knobs, glibc's `GLIBC_TUNABLES`), then `make bench`'s load runs from a to b (pings,
one TCP flow, 64-byte UDP at full rate). For every node it records the RSS once the
lab is ready (idle: imports and start-up) and the peak RSS (VmHWM) after the load, plus
the TCP Gbit/s and 64-byte packets per second, so memory and throughput of the
variants are compared in the same run. Alternating variants round by round spreads
the machine's noise over all of them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from peertap.sidecar.lab import Lab, LabError, topology

_spec = importlib.util.spec_from_file_location("bench", Path(__file__).with_name("bench.py"))
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench"] = bench  # its dataclasses look their module up
_spec.loader.exec_module(bench)


@dataclass
class Run:
    variant: str
    gbps: float | None = None
    udp64_pps: float | None = None
    idle_rss_mib: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    phase_peak_mib: dict[str, dict[str, float]] = field(default_factory=dict)
    """VmHWM of each node after each phase (ping, tcp, udp64): where the peak was reached."""
    error: str | None = None


def mark(run: Run, phase: str, pids: dict[str, int | None]) -> None:
    run.phase_peak_mib[phase] = {
        pod: status_mib(pid, "VmHWM") for pod, pid in pids.items() if pid is not None
    }


def status_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise bench.BenchError(f"no {key} for pid {pid}")


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, assignments = text.partition(":")
    env = {}
    for item in filter(None, assignments.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"variant {text!r}: {item!r} is not KEY=VALUE")
        env[key] = value
    return name, env


def run_once(name: str, env: dict[str, str], topo: str, opts: Any) -> Run:
    run = Run(variant=name)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the lab's node processes inherit it
    try:
        spec = topology("relay", relay_node=(topo == "relay"))
        with Lab.up(bench.untraced(spec)) as lab:
            lab.wait_ready(timeout=60)
            time.sleep(2.0)
            pids = {pod: lab.node_pid(pod) for pod in lab.plan.node_pods()}
            for pod, pid in pids.items():
                assert pid is not None, pod
                run.idle_rss_mib[pod] = status_mib(pid, "VmRSS")
            dst = lab.overlay_address("b")
            bench.wait_reachable(lab, dst)
            result = bench.Result(scenario=name)
            bench.measure_ping(lab, dst, opts, result)
            mark(run, "ping", pids)
            tcp = bench.iperf(lab, dst, opts, ["-t", str(opts.duration)])
            run.gbps = tcp["end"]["sum_received"]["bits_per_second"] / 1e9
            mark(run, "tcp", pids)
            udp = bench.iperf(
                lab, dst, opts, ["-u", "-l", "64", "-b", "0", "-t", str(bench.UDP_SECONDS)]
            )["end"]["sum"]
            run.udp64_pps = (udp["packets"] - udp["lost_packets"]) / udp["seconds"]
            mark(run, "udp64", pids)
            run.peak_rss_mib = dict(run.phase_peak_mib["udp64"])
    except (bench.BenchError, LabError, OSError, subprocess.SubprocessError) as err:
        run.error = f"{type(err).__name__}: {err}"
        print(f"   {name} failed: {run.error}", file=sys.stderr)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return run


def summary(runs: list[Run], variants: list[str]) -> str:
    lines = [
        f"{'variant':<14} {'runs':>4} {'Gbit/s':>7} {'64B pps':>8} "
        f"{'idle RSS MiB (max node)':>24} {'peak RSS MiB (max node)':>24}  per node peak"
    ]
    for name in variants:
        ok = [r for r in runs if r.variant == name and r.error is None]
        if not ok:
            lines.append(f"{name:<14} {0:>4} (all runs failed)")
            continue
        gbps = statistics.median(r.gbps or 0.0 for r in ok)
        pps = statistics.median(r.udp64_pps or 0.0 for r in ok)
        idle = [max(r.idle_rss_mib.values()) for r in ok]
        peak = [max(r.peak_rss_mib.values()) for r in ok]
        nodes = "; ".join(
            ", ".join(f"{pod} {mib:.0f}" for pod, mib in r.peak_rss_mib.items()) for r in ok
        )
        lines.append(
            f"{name:<14} {len(ok):>4} {gbps:>7.3f} {pps:>8.0f} "
            f"{min(idle):>10.1f} .. {max(idle):<10.1f} {min(peak):>10.1f} .. {max(peak):<10.1f}"
            f"  {nodes}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--topology", choices=("relay", "direct"), default="relay")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:KEY=VALUE,... environment of the nodes (default: one variant, as is)",
    )
    parser.add_argument("--duration", type=int, default=8, help="iperf3 TCP seconds")
    parser.add_argument("--json", type=Path, help="also write the runs as JSON here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench-memory: run as root (network namespaces, TAP devices)", file=sys.stderr)
        return 2
    variants = [parse_variant(v) for v in args.variant] or [("as-is", {})]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="peertap-bench-memory-") as tmp:
        for round_no in range(args.rounds):
            for name, env in variants:
                work = Path(tmp) / f"{name}-{round_no}"
                work.mkdir()
                opts = bench.Options(args.duration, 100, 0.01, work)
                print(f"-- round {round_no + 1}: {name} {env or ''}", flush=True)
                run = run_once(name, env, args.topology, opts)
                runs.append(run)
                print(
                    f"   Gbit/s {run.gbps}, 64B pps {run.udp64_pps}, idle {run.idle_rss_mib},"
                    f" peak after each phase {run.phase_peak_mib}",
                    flush=True,
                )
    print()
    print(f"topology {args.topology}, {args.rounds} rounds, load average {os.getloadavg()}")
    print(summary(runs, [name for name, _ in variants]))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2) + "\n")
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
