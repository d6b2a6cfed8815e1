"""Two replicas of the installed chart's operator elect one leader; when the leader is
killed the other takes over and reconciles what changed meanwhile. Real Helm, a real
API server, the operator processes as the chart's Deployment runs them, under its
ServiceAccount."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from installed import (
    FULLNAME,
    NAMESPACE,
    Installed,
    kubectl,
    loopback_ports,
    run_operator,
    vlan_members,
    wait_for,
)
from kube.controlplane import ControlPlane

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
PEERING = f"/apis/kopf.dev/v1/clusterkopfpeerings/{FULLNAME}"
TAKEOVER_S = 120.0  # a dead leader's record lasts the peering lifetime (30 s), then more


def _peers(cp: ControlPlane) -> dict[str, Any]:
    status: dict[str, Any] = cp.request("GET", PEERING).get("status") or {}
    return status


def _pod(name: str) -> str:
    pod = (EXAMPLES / "pod.yaml").read_text()
    assert "name: lab-client" in pod
    return pod.replace("name: lab-client", f"name: {name}", 1)


def test_a_standby_replica_takes_over_when_the_leader_dies(
    installed: Installed, tmp_path: Path
) -> None:
    cp = installed.cp
    sa = cp.kubeconfig_for_service_account(NAMESPACE, installed.service_account())
    assert int(installed.deployment()["spec"]["replicas"]) >= 2
    with contextlib.ExitStack() as stack:
        ops = {
            name: stack.enter_context(
                run_operator(installed, sa, tmp_path, loopback_ports(), pod_name=name)
            )
            for name in ("op-a", "op-b")
        }
        for op in ops.values():
            wait_for("operator health", op.healthy)
        wait_for("both replicas in the peering", lambda: len(_peers(cp)) == 2)
        peers = _peers(cp)
        leader = max(peers, key=lambda p: peers[p]["priority"])
        standby = next(p for p in peers if p != leader)
        assert {leader, standby} == set(ops)
        # Every replica serves the webhooks; the API server calls the standby's.
        installed.route_webhooks_to(ops[standby].ports["--webhook-listen"])

        for example in ("mvlan.yaml", "cryptovlan.yaml"):
            done = kubectl(cp.kubeconfig, "apply", "-n", "default", "-f", str(EXAMPLES / example))
            assert done.returncode == 0, done.stderr
        done = kubectl(cp.kubeconfig, "apply", "-n", "default", "-f", "-", stdin=_pod("first"))
        assert done.returncode == 0, done.stderr
        wait_for("the leader to take the first pod in", lambda: vlan_members(cp) == ["first"])
        # The standby paused for the leader: it reconciled nothing.
        wait_for("the standby to pause", lambda: "Pausing" in ops[standby].output())

        os.killpg(ops[leader].popen.pid, signal.SIGKILL)
        ops[leader].popen.wait(30)
        done = kubectl(cp.kubeconfig, "apply", "-n", "default", "-f", "-", stdin=_pod("second"))
        assert done.returncode == 0, done.stderr
        wait_for(
            "the standby to take over and take the second pod in",
            lambda: vlan_members(cp) == ["first", "second"],
            timeout=TAKEOVER_S,
        )
        assert ops[standby].healthy()
        assert "forbidden" not in ops[standby].output().lower(), ops[standby].output()
