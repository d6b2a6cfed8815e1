"""The chart lints strict, renders in every supported shape, and every manifest is valid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "peertap"
NAMESPACE = "peertap-system"  # the namespace the render fixture installs into

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]

KUBERNETES_VERSION = "1.31.0"
SUPPORTED_RANGE = ("v1.27.0", "v1.31.0")

VARIATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "watch-namespaces": {"watchNamespaces": ["team-a", "team-b"]},
    "watch-release-namespace": {"watchNamespaces": [NAMESPACE, "team-a"]},
    "service-monitor": {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"r": "p"}}}},
    "fail-closed-injection": {"webhook": {"failurePolicy": "Fail"}},
    "dashboards": {
        "dashboards": {"enabled": True, "namespace": "monitoring", "annotations": {"f": "PeerTap"}}
    },
    "no-webhook": {"webhook": {"enabled": False}},
    "match-all-pods": {"webhook": {"matchAllPods": True}},
    "scheduling": {
        "operator": {
            "verbose": True,
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "infra", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "pool", "operator": "In", "values": ["infra"]}
                                ]
                            }
                        ]
                    }
                }
            },
            "extraEnv": [{"name": "PEERTAP_EXTRA", "value": "1"}],
            "podAnnotations": {"example.com/a": "b"},
        },
        "imagePullSecrets": [{"name": "regcred"}],
        "serviceAccount": {"annotations": {"example.com/role": "x"}},
    },
}

# Subset of prometheus-operator's ServiceMonitor (monitoring.coreos.com/v1) covering
# every field the chart sets; Kubernetes' own schemas do not include it.
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "additionalProperties": False,
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "namespaceSelector": {
                    "type": "object",
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                    "additionalProperties": False,
                },
                "selector": {
                    "type": "object",
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                    "additionalProperties": False,
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {
                                "type": "string",
                                "pattern": "^(0|(([0-9]+)(ms|s|m|h))+)$",
                            },
                            "scrapeTimeout": {
                                "type": "string",
                                "pattern": "^(0|(([0-9]+)(ms|s|m|h))+)$",
                            },
                        },
                    },
                },
            },
        },
    },
}


# kopf's peering objects (kopf.dev/v1, the CRDs in crds/kopf-*.yaml): metadata only.
PEERING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "kopf.dev/v1"},
        "kind": {"enum": ["ClusterKopfPeering", "KopfPeering"]},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "additionalProperties": False,
        },
    },
}


def _validate(manifest: Manifest) -> None:
    if manifest["apiVersion"] == "monitoring.coreos.com/v1":
        jsonschema.Draft202012Validator(SERVICE_MONITOR_SCHEMA).validate(manifest)
        return
    if manifest["apiVersion"] == "kopf.dev/v1":
        jsonschema.Draft202012Validator(PEERING_SCHEMA).validate(manifest)
        return
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("kube_version", SUPPORTED_RANGE)
@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_chart_lints_strict_without_warnings(variation: str, kube_version: str) -> None:
    report = helm.lint(CHART_DIR, VARIATIONS[variation], strict=True, kube_version=kube_version)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_every_rendered_manifest_validates_strictly_for_kubernetes_1_31(
    render: Render, variation: str
) -> None:
    manifests = render(VARIATIONS[variation])
    assert manifests
    for manifest in manifests:
        try:
            _validate(manifest)
        except jsonschema.ValidationError as err:
            name = f"{manifest['kind']}/{manifest['metadata']['name']}"
            pytest.fail(f"{name} in variation {variation}: {err.message} at {list(err.path)}")


def test_strict_validation_catches_a_misspelled_field(render: Render) -> None:
    deployment = next(m for m in render() if m["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["nodeSelecter"] = {}
    with pytest.raises(jsonschema.ValidationError):
        _validate(deployment)


def test_default_install_renders_exactly_the_documented_objects(render: Render) -> None:
    kinds = sorted(m["kind"] for m in render())
    assert kinds == [
        "ClusterKopfPeering",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "MutatingWebhookConfiguration",
        "PodDisruptionBudget",
        "Service",
        "Service",
        "ServiceAccount",
        "ValidatingWebhookConfiguration",
    ]


def test_two_replicas_elect_a_leader_keep_one_through_drains_and_never_stop_together(
    render: Render,
) -> None:
    manifests = render()
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (peering,) = [m for m in manifests if m["kind"] == "ClusterKopfPeering"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--peering={peering['metadata']['name']}" in args
    (pdb,) = [m for m in manifests if m["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    # A single replica has no PDB (it would block every drain); watched namespaces get one
    # KopfPeering each.
    single = render({"operator": {"replicas": 1}})
    assert not [m for m in single if m["kind"] == "PodDisruptionBudget"]
    scoped = render({"watchNamespaces": ["team-a", "team-b"]})
    assert sorted(m["metadata"]["namespace"] for m in scoped if m["kind"] == "KopfPeering") == [
        "team-a",
        "team-b",
    ]


def test_service_monitor_is_rendered_only_when_enabled(render: Render) -> None:
    assert not [m for m in render() if m["kind"] == "ServiceMonitor"]
    manifests = render(VARIATIONS["service-monitor"])
    (monitor,) = [m for m in manifests if m["kind"] == "ServiceMonitor"]
    (metrics,) = [
        m for m in manifests if m["kind"] == "Service" and m["metadata"]["name"].endswith("metrics")
    ]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= metrics["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == metrics["spec"]["ports"][0]["name"]
    assert monitor["metadata"]["labels"]["r"] == "p"


def test_service_monitor_without_metrics_service_is_a_render_error(render: Render) -> None:
    values = {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}}
    with pytest.raises(helm.HelmRenderError, match=r"metrics\.service\.enabled"):
        render(values)


@pytest.mark.parametrize(
    "values",
    [
        {"operator": {"replicas": "one"}},
        {"operator": {"replicas": 9}},
        {"webhook": {"failurePolicy": "Sometimes"}},
        {"metrics": {"port": 70000}},
        {"unknownTopLevel": True},
        {"operator": {"image": {"digest": "sha256:00"}}},
        {"operator": {"affinity": {"nodeAfinity": {}}}},
        {"watchNamespaces": ["Not_A_Namespace"]},
    ],
    ids=[
        "replicas-wrong-type",
        "nine-replicas",
        "failure-policy-unknown",
        "port-out-of-range",
        "unknown-top-level-key",
        "unknown-nested-key",
        "typo-inside-kubernetes-object",
        "invalid-namespace-name",
    ],
)
def test_bad_values_are_refused_by_helm_render(render: Render, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        render(values)
