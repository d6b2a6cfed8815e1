"""How long the test control plane (tests/kube) takes to start, and what it weighs.

Starts it ROUNDS times (default 3), one after the other, and prints per round the
time until the API server is ready with the namespace's default ServiceAccount, and
the resident memory of etcd, kube-apiserver and kube-controller-manager once idle.

    .venv/bin/python hack/bench-kube.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kube.controlplane import ControlPlane


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    starts = []
    with tempfile.TemporaryDirectory(prefix="bench-kube-") as tmp:
        for n in range(args.rounds):
            cp = ControlPlane.start(Path(tmp), f"round{n}")
            try:
                starts.append(cp.startup_seconds)
                time.sleep(5)
                # The API server runs under unshare/sh when it has loopback names; none here.
                rss = {p.name: rss_mib(p.popen.pid) for p in cp._processes}
                print(
                    f"round {n}: {cp.version} ready in {cp.startup_seconds:.1f} s; RSS "
                    + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in rss.items()),
                    flush=True,
                )
            finally:
                stop = time.monotonic()
                cp.stop()
                print(f"round {n}: stopped in {time.monotonic() - stop:.1f} s", flush=True)
    print(f"start: median {statistics.median(starts):.1f} s, min {min(starts):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
