"""make e2e-local: PeerTap on one or two real local Kubernetes control planes, end to end.

Two clusters ("east", "west"; CLUSTERS=1 for east alone) each get a real etcd,
kube-apiserver and kube-controller-manager (tests/kube/controlplane.py) and a kubelet
stand-in (hack/localkube) that runs every Pod as a network namespace with its
containers' real processes. The chart is installed with Helm, the manifests of
deploy/examples/cross-cluster/ are applied, and pods ping each other on the private
VLAN across the relays. Prints each step, ends with one summary line, cleans up.

    .venv/bin/python hack/e2e-local.py [--clusters 1|2] [--keep]
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localkube import scenario

# One run at a time per machine: the fabric's addresses and host routes are fixed.
LOCK = Path("/run/lock/peertap-e2e-local.lock")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, choices=(1, 2), default=2)
    parser.add_argument("--keep", action="store_true", help="wait for Enter before cleaning up")
    parser.add_argument("--verbose", action="store_true", help="log every pod start and stop")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="    [%(name)s] %(message)s",
    )
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another e2e-local run holds {LOCK}", file=sys.stderr)
            return 1
        workdir = Path(tempfile.mkdtemp(prefix="peertap-e2e-"))
        # Containers that drop to an unprivileged user keep group root: they must be able
        # to walk down to their volume files.
        workdir.chmod(0o750)
        prefix = "lk" + secrets.token_hex(2)

        def keep() -> None:
            print(f"kept: kubeconfigs under {workdir}/*/admin.kubeconfig; press Enter to clean up")
            input()

        try:
            outcome = scenario.run(
                clusters=args.clusters,
                workdir=workdir,
                prefix=prefix,
                keep=keep if args.keep else None,
            )
        except scenario.ScenarioError as err:
            print(
                f"FAIL: {err}\n(logs under {workdir}: pods in */pods/*/logs/, "
                "control planes in */*.log)"
            )
            return 1
        shutil.rmtree(workdir, ignore_errors=True)
        return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
