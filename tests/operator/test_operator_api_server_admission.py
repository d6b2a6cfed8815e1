"""kube-apiserver itself calls the operator's webhooks: sidecar injection and validation
happen on `kubectl apply`, over HTTPS verified against the caBundle the operator publishes."""

from __future__ import annotations

import base64

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
        containers = {c["name"]: c for c in pod["spec"]["containers"]}
        assert containers["peertap"]["image"] == "registry.example/peertap:test"
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
        assert [c["name"] for c in plain["spec"]["containers"]] == ["app"]

    # With the operator down, the chart's policies: pods still start (Ignore), without a
    # sidecar; PeerTap resources cannot change (Fail).
    kubectl.apply_text(em.pod_yaml("web-2", {"app": "lab-node"}))
    assert [c["name"] for c in emulator.objects("v1/pods", NS)["web-2"]["spec"]["containers"]] == [
        "app"
    ]
    refused = kubectl("label", "cryptovlan", "lab", "-n", NS, "touched=yes", check=False)
    assert "failed calling webhook" in refused
