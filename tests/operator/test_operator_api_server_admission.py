"""kube-apiserver itself calls the operator's webhooks: sidecar injection and validation
happen on `kubectl apply`, over HTTPS verified against the caBundle the operator publishes."""

from __future__ import annotations

import base64
from typing import Any

import emulated as em
import yaml
from emulated import EXAMPLES, NS
from operator_harness import WEBHOOK_CONFIG, ClusterView, Kubectl, OperatorFactory, wait_for


def _ca_bundles(emulator: ClusterView) -> list[str] | None:
    bundles = []
    for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        config = emulator.objects(f"admissionregistration.k8s.io/v1/{plural}")[WEBHOOK_CONFIG]
        bundles += [h["clientConfig"].get("caBundle") for h in config["webhooks"]]
    return bundles if all(bundles) else None


def _names(pod: dict[str, Any]) -> list[str]:
    spec = pod["spec"]
    return [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]


def _sidecar(pod: dict[str, Any]) -> dict[str, Any]:
    """The injected container (a regular or a native, restartPolicy: Always, sidecar)."""
    spec = pod["spec"]
    (found,) = [
        c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "peertap"
    ]
    return dict(found)


def test_api_server_injects_the_sidecar_and_validates_through_the_operator(
    emulator: ClusterView, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.register_webhooks()
    with operator_factory() as op:
        (bundle, *_) = wait_for("the published caBundle", lambda: _ca_bundles(emulator))
        assert base64.b64decode(bundle) == op.ca_pem

        # Validation: the API server refuses what the operator's webhook denies.
        vlan = (EXAMPLES / "cryptovlan.yaml").read_text()
        refused = kubectl(
            "apply", "-n", NS, "-f", "-", stdin=vlan.replace("/24", "/33"), check=False
        )
        assert "denied the request" in refused and "10.250.0.0/33" in refused
        kubectl.apply(EXAMPLES / "cryptovlan.yaml")
        relabel = yaml.safe_load(vlan)
        relabel["spec"]["label"] = "other"
        refused = kubectl("apply", "-n", NS, "-f", "-", stdin=yaml.safe_dump(relabel), check=False)
        assert "immutable" in refused

        # Injection: the pod as stored already has the sidecar and its projected config.
        kubectl.apply_text(em.pod_yaml("web-1", {"app": "lab-node"}))
        pod = emulator.objects("v1/pods", NS)["web-1"]
        assert _sidecar(pod)["image"] == "registry.example/peertap:test"
        key = pod["metadata"]["annotations"]["peertap.io/member"]
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert {"configMap": {"name": f"peertap-m-{key}"}} in volumes["peertap-config"][
            "projected"
        ]["sources"]
        wait_for("the member's ConfigMap", lambda: f"peertap-m-{key}" in em.configmaps(emulator))
        wait_for("web-1 in the members", lambda: [m["pod"] for m in em.members(emulator)])

        # A pod no VLAN selects is stored as it was sent.
        kubectl.apply_text(em.pod_yaml("plain", {"app": "web"}))
        plain = emulator.objects("v1/pods", NS)["plain"]
        assert _names(plain) == ["app"]

    # With the operator down, the chart's policies: pods still start (Ignore), without a
    # sidecar; PeerTap resources cannot change (Fail).
    kubectl.apply_text(em.pod_yaml("web-2", {"app": "lab-node"}))
    assert _names(emulator.objects("v1/pods", NS)["web-2"]) == ["app"]
    refused = kubectl("label", "cryptovlan", "lab", "-n", NS, "touched=yes", check=False)
    assert "failed calling webhook" in refused
