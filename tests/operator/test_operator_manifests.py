"""Objects the operator writes or patches are valid Kubernetes objects (strict schemas, 1.31)."""

from __future__ import annotations

from pathlib import Path

import jsonpatch
import kubernetes_validate
import yaml

from peertap.operator import admission, models, relay

ROOT = Path(__file__).resolve().parents[2]
K8S = "1.31"


def test_example_pod_is_a_valid_pod() -> None:
    pod = yaml.safe_load((ROOT / "deploy" / "examples" / "pod.yaml").read_text())
    kubernetes_validate.validate(pod, K8S, strict=True)


def test_pod_with_the_injected_sidecar_is_still_a_valid_pod() -> None:
    pod = yaml.safe_load((ROOT / "deploy" / "examples" / "pod.yaml").read_text())
    ops = admission.mutate_pod(pod, vlans=[], image="ghcr.io/peertap/peertap:0.1.0")
    mutated = jsonpatch.apply_patch(pod, ops)
    kubernetes_validate.validate(mutated, K8S, strict=True)
    assert [c["name"] for c in mutated["spec"]["containers"]] == ["shell"]
    assert [c["name"] for c in mutated["spec"]["initContainers"]] == ["peertap"]


def test_relay_deployment_service_and_configmap_are_valid() -> None:
    mvlan = {
        "apiVersion": "peertap.io/v1alpha1",
        "kind": "MVLAN",
        "metadata": {"name": "campus", "namespace": "ns", "uid": "3f1c"},
    }
    for spec in (
        {},
        {"relays": {"serviceType": "NodePort", "replicas": 0}},
        {"relays": {"serviceType": "LoadBalancer", "replicas": 3}},
    ):
        desired = relay.relay_objects(
            mvlan=mvlan, spec=models.MVLANSpec.model_validate(spec), image="img:1"
        )
        for obj in desired.all():
            kubernetes_validate.validate(obj, K8S, strict=True)


def test_crds_are_valid_custom_resource_definitions() -> None:
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        kubernetes_validate.validate(yaml.safe_load(path.read_text()), K8S, strict=True)
