"""The chart installed with real Helm into a real API server, its operator running as the
chart's ServiceAccount with RBAC enforced, and the API server calling its webhooks.

A rule missing from the chart's RBAC shows here as a Forbidden in the operator's log
or as an object it never writes; a webhook the API server cannot reach or verify
shows as a refused CryptoVLAN or a pod without its sidecar.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from installed import (
    FULLNAME,
    NAMESPACE,
    Installed,
    install,
    kubectl,
    loopback_ports,
    run_operator,
    vlan_members,
    wait_for,
)
from kube.controlplane import ControlPlane

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"


def _pod(cp: ControlPlane, name: str, namespace: str = "default") -> dict[str, Any]:
    return dict(cp.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}"))


def _published_ca_bundles(cp: ControlPlane) -> list[str] | None:
    bundles = []
    for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        path = f"/apis/admissionregistration.k8s.io/v1/{plural}/{FULLNAME}"
        bundles += [h["clientConfig"].get("caBundle") for h in cp.request("GET", path)["webhooks"]]
    return bundles if all(bundles) else None


def test_installed_chart_runs_the_operator_under_its_service_account(
    installed: Installed, tmp_path: Path
) -> None:
    cp = installed.cp
    sa = cp.kubeconfig_for_service_account(NAMESPACE, installed.service_account())
    ports = loopback_ports()
    installed.route_webhooks_to(ports["--webhook-listen"])
    with run_operator(installed, sa, tmp_path, ports) as op:
        wait_for("operator health", op.healthy)
        # The operator published its CA into the chart's webhook configurations.
        bundles = wait_for("caBundle in every webhook", lambda: _published_ca_bundles(cp))
        assert b"BEGIN CERTIFICATE" in base64.b64decode(bundles[0])

        # The API server calls the validating webhook (failurePolicy Fail) ...
        bad = (EXAMPLES / "cryptovlan.yaml").read_text().replace("10.250.0.0/24", "10.0.0.0/33")
        refused = kubectl(cp.kubeconfig, "apply", "-n", "default", "-f", "-", stdin=bad)
        assert refused.returncode != 0
        assert "denied the request" in refused.stderr and "10.0.0.0/33" in refused.stderr
        # ... which admits the examples.
        for example in ("mvlan.yaml", "cryptovlan.yaml"):
            done = kubectl(cp.kubeconfig, "apply", "-n", "default", "-f", str(EXAMPLES / example))
            assert done.returncode == 0, done.stderr

        # The mutating webhook injects the sidecar into the labelled pod as it is created.
        done = kubectl(cp.kubeconfig, "apply", "-n", "default", "-f", str(EXAMPLES / "pod.yaml"))
        assert done.returncode == 0, done.stderr
        spec = _pod(cp, "lab-client")["spec"]
        # A regular container or a native (init, restartPolicy: Always) sidecar.
        containers = [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]
        assert "peertap" in containers, containers

        # Everything the operator does for it, it does with the chart's RBAC: the member
        # objects, the VLAN status, the MVLAN's relay Deployment (which the controller
        # manager turns into a ReplicaSet).
        wait_for("lab-client in the VLAN's members", lambda: vlan_members(cp) == ["lab-client"])
        key = _pod(cp, "lab-client")["metadata"]["annotations"]["peertap.io/member"]
        cm = cp.request("GET", f"/api/v1/namespaces/default/configmaps/peertap-m-{key}")
        assert "node.json" in cm["data"]
        wait_for(
            "the relay's ReplicaSet",
            lambda: cp.request(
                "GET", "/apis/apps/v1/namespaces/default/replicasets?labelSelector="
            )["items"],
        )
        log = op.output()
    assert "forbidden" not in log.lower(), log


def test_chart_service_account_cannot_act_beyond_its_rules(installed: Installed) -> None:
    cp = installed.cp
    sa = cp.kubeconfig_for_service_account(NAMESPACE, installed.service_account())
    # Webhook configurations: only the release's own, by name.
    other = kubectl(
        cp.kubeconfig,
        "create",
        "-f",
        "-",
        stdin=(
            "apiVersion: admissionregistration.k8s.io/v1\n"
            "kind: ValidatingWebhookConfiguration\nmetadata:\n  name: someone-else\n"
        ),
    )
    assert other.returncode == 0, other.stderr
    patch = '{"metadata":{"labels":{"x":"y"}}}'
    denied = kubectl(sa, "patch", "validatingwebhookconfiguration", "someone-else", "-p", patch)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    allowed = kubectl(sa, "patch", "validatingwebhookconfiguration", FULLNAME, "-p", patch)
    assert allowed.returncode == 0, allowed.stderr
    # Pods: read only; RBAC objects and namespaces: untouchable.
    made = kubectl(cp.kubeconfig, "run", "victim", "--image=busybox:1.36", "-n", "default")
    assert made.returncode == 0, made.stderr
    assert kubectl(sa, "get", "pod", "victim", "-n", "default").returncode == 0
    for args in (
        ("delete", "pod", "victim", "-n", "default"),
        ("create", "clusterrolebinding", "x", "--clusterrole=cluster-admin", "--user=x"),
        ("create", "namespace", "x"),
        ("delete", "namespace", NAMESPACE),
    ):
        done = kubectl(sa, *args)
        assert done.returncode != 0 and "forbidden" in done.stderr.lower(), (args, done)


def test_watching_namespaces_confines_the_service_account_to_them(
    control_plane: ControlPlane,
) -> None:
    cp = control_plane
    cp.wipe()
    for ns in ("team-a", "team-b"):
        done = kubectl(cp.kubeconfig, "create", "namespace", ns)
        assert done.returncode == 0 or "AlreadyExists" in done.stderr, done.stderr
    try:
        with install(cp, {"watchNamespaces": ["team-a"]}) as release:
            sa = cp.kubeconfig_for_service_account(NAMESPACE, release.service_account())
            assert kubectl(sa, "get", "secrets", "-n", "team-a").returncode == 0
            for args in (
                ("get", "secrets", "-n", "team-b"),
                ("get", "secrets", "-A"),
                ("create", "configmap", "x", "-n", "team-b"),
            ):
                done = kubectl(sa, *args)
                assert done.returncode != 0 and "forbidden" in done.stderr.lower(), (args, done)
            # Its own namespace: only the webhook certificate Secret, by name.
            cert = f"{FULLNAME}-webhook-cert"
            made = kubectl(sa, "create", "secret", "generic", cert, "-n", NAMESPACE)
            assert made.returncode == 0, made.stderr
            assert kubectl(sa, "get", "secret", cert, "-n", NAMESPACE).returncode == 0
            other = kubectl(sa, "get", "secrets", "-n", NAMESPACE)
            assert other.returncode != 0 and "forbidden" in other.stderr.lower()
    finally:
        cp.wipe()
