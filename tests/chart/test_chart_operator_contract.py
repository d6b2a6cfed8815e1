"""The operator Deployment, Services and webhook configurations match the operator's contract."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]

NAMESPACE = "peertap-system"  # the namespace the render fixture installs into
FULLNAME = "pt-peertap"  # release "pt" of chart "peertap"


def _one(manifests: list[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    found = [
        m for m in manifests if m["kind"] == kind and m["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, got {len(found)}"
    return found[0]


def _container(manifests: list[Manifest]) -> Manifest:
    containers: list[Manifest] = _one(manifests, "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    assert len(containers) == 1
    return containers[0]


def _flags(args: list[str]) -> list[tuple[str, str]]:
    """Split --flag=value arguments, keeping order and repeats."""
    flags = []
    for arg in args:
        name, _, value = arg.partition("=")
        assert name.startswith("--"), f"argument {arg!r} is not a --flag"
        flags.append((name, value))
    return flags


def test_operator_args_carry_every_contract_flag(render: Render) -> None:
    flags = dict(_flags(_container(render())["args"]))
    assert flags == {
        "--webhook-listen": "0.0.0.0:9443",
        "--webhook-service": f"{FULLNAME}-webhook.{NAMESPACE}",
        "--webhook-cert-secret": f"{NAMESPACE}/{FULLNAME}-webhook-cert",
        "--webhook-config-name": FULLNAME,
        "--health-listen": "0.0.0.0:8080",
        "--metrics-listen": "0.0.0.0:9090",
        "--sidecar-image": "ghcr.io/peertap/peertap-sidecar:0.1.0",
        "--peering": FULLNAME,
        "--sidecar-user": "65532",
        "--sidecar-resources": '{"limits":{"memory":"320Mi"},'
        '"requests":{"cpu":"100m","memory":"160Mi"}}',
        "--relay-resources": '{"limits":{"memory":"448Mi"},'
        '"requests":{"cpu":"250m","memory":"224Mi"}}',
    }


def test_sidecar_and_relay_values_reach_the_pods_the_operator_renders(render: Render) -> None:
    options = importlib.import_module("peertap.operator.options")
    values = {
        "sidecar": {"runAsUser": 0, "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
        "relay": {"resources": {"limits": {"memory": "2Gi"}}},
    }
    parsed = options.parse(_container(render(values))["args"], env={})
    settings = parsed.pod_settings()
    assert settings.user == 0
    # Helm merges the given keys into the defaults.
    assert settings.sidecar_resources == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"memory": "320Mi"},
    }
    assert settings.relay_resources == {
        "requests": {"cpu": "250m", "memory": "224Mi"},
        "limits": {"memory": "2Gi"},
    }


def test_watch_namespaces_become_repeated_namespace_flags(render: Render) -> None:
    flags = _flags(_container(render({"watchNamespaces": ["a", "b"]}))["args"])
    assert [value for name, value in flags if name == "--namespace"] == ["a", "b"]


def test_disabled_webhook_runs_the_operator_with_no_webhook_and_renders_no_webhook_objects(
    render: Render,
) -> None:
    manifests = render({"webhook": {"enabled": False}})
    names = [name for name, _ in _flags(_container(manifests)["args"])]
    assert "--no-webhook" in names
    assert not [n for n in names if n.startswith("--webhook-")]
    kinds = {m["kind"] for m in manifests}
    assert "MutatingWebhookConfiguration" not in kinds
    assert "ValidatingWebhookConfiguration" not in kinds
    assert not [m for m in manifests if m["metadata"]["name"].endswith("-webhook")]


def test_image_settings_reach_the_deployment_and_the_sidecar_flag(render: Render) -> None:
    values = {
        "operator": {"image": {"repository": "r/op", "tag": "1.2", "pullPolicy": "Always"}},
        "sidecar": {"image": {"repository": "r/sc", "tag": "3.4"}},
    }
    container = _container(render(values))
    assert container["image"] == "r/op:1.2"
    assert container["imagePullPolicy"] == "Always"
    assert ("--sidecar-image", "r/sc:3.4") in _flags(container["args"])


def test_operator_runs_non_root_with_read_only_root_and_bounded_resources(
    render: Render,
) -> None:
    manifests = render()
    pod = _one(manifests, "Deployment")["spec"]["template"]["spec"]
    container = _container(manifests)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}


def test_two_operator_replicas_rolled_without_a_gap(render: Render) -> None:
    spec = _one(render(), "Deployment")["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


def test_probes_hit_healthz_on_the_health_port_and_metrics_port_is_exposed(
    render: Render,
) -> None:
    container = _container(render())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"webhook": 9443, "health": 8080, "metrics": 9090}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_services_select_the_operator_pod_and_map_the_contract_ports(render: Render) -> None:
    manifests = render()
    pod_labels = _one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    container_ports = {p["name"]: p["containerPort"] for p in _container(manifests)["ports"]}
    webhook = _one(manifests, "Service", "-webhook")
    metrics = _one(manifests, "Service", "-metrics")
    for service in (webhook, metrics):
        assert service["spec"]["selector"].items() <= pod_labels.items()
    (https,) = webhook["spec"]["ports"]
    assert https["port"] == 443
    assert container_ports[https["targetPort"]] == 9443
    (scrape,) = metrics["spec"]["ports"]
    assert container_ports[scrape["targetPort"]] == 9090


def test_mutating_webhook_injects_only_labelled_pods_and_fails_open_by_default(
    render: Render,
) -> None:
    manifests = render()
    config = _one(manifests, "MutatingWebhookConfiguration")
    assert config["metadata"]["name"] == FULLNAME
    (hook,) = config["webhooks"]
    assert hook["clientConfig"]["service"] == {
        "name": f"{FULLNAME}-webhook",
        "namespace": NAMESPACE,
        "path": "/mutate-pods",
        "port": 443,
    }
    assert "caBundle" not in hook["clientConfig"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["sideEffects"] == "None"
    assert hook["objectSelector"] == {
        "matchExpressions": [{"key": "peertap.io/vlans", "operator": "Exists"}]
    }
    assert hook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    # Never kube-system nor the operator's own namespace: an operator outage must not
    # block the control plane or the operator's own pods.
    assert hook["namespaceSelector"] == {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": ["kube-system", NAMESPACE],
            }
        ]
    }
    assert [c["name"] for c in hook["matchConditions"]] == ["not-a-relay"]


def test_failure_policy_switch_makes_injection_fail_closed(render: Render) -> None:
    config = _one(render({"webhook": {"failurePolicy": "Fail"}}), "MutatingWebhookConfiguration")
    assert config["webhooks"][0]["failurePolicy"] == "Fail"


@pytest.mark.parametrize("resource", ["cryptovlans", "mvlans"])
def test_validating_webhook_checks_create_and_update_of_each_peertap_resource(
    render: Render, resource: str
) -> None:
    config = _one(render(), "ValidatingWebhookConfiguration")
    assert config["metadata"]["name"] == FULLNAME
    (hook,) = [h for h in config["webhooks"] if h["name"] == f"{resource}.peertap.io"]
    assert hook["clientConfig"]["service"]["path"] == f"/validate-{resource}"
    assert hook["clientConfig"]["service"]["name"] == f"{FULLNAME}-webhook"
    assert "caBundle" not in hook["clientConfig"]
    assert hook["rules"] == [
        {
            "apiGroups": ["peertap.io"],
            "apiVersions": ["v1alpha1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": [resource],
            "scope": "Namespaced",
        }
    ]
    # The CRDs' CEL rules validate while no operator answers; metadata-only updates (a
    # finalizer fix) never call the webhook.
    assert hook["failurePolicy"] == "Ignore"
    (condition,) = hook["matchConditions"]
    assert "object.spec" in condition["expression"] and "oldObject.spec" in condition["expression"]
    assert ("peertap.io/authority" in condition["expression"]) is (resource == "cryptovlans")


def test_webhooks_see_only_watched_namespaces_when_namespaces_are_set(render: Render) -> None:
    manifests = render({"watchNamespaces": ["team-a", "team-b"]})
    hooks = [
        *_one(manifests, "MutatingWebhookConfiguration")["webhooks"],
        *_one(manifests, "ValidatingWebhookConfiguration")["webhooks"],
    ]
    assert len(hooks) == 3
    for hook in hooks:
        assert hook["namespaceSelector"] == {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": ["kube-system", NAMESPACE],
                },
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["team-a", "team-b"],
                },
            ]
        }


def test_webhook_config_name_argument_names_both_configurations(render: Render) -> None:
    manifests = render({"fullnameOverride": "peertap"})
    flags = dict(_flags(_container(manifests)["args"]))
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        assert _one(manifests, kind)["metadata"]["name"] == flags["--webhook-config-name"]
    assert flags["--webhook-service"] == f"peertap-webhook.{NAMESPACE}"


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"watchNamespaces": ["a", "b"], "operator": {"verbose": True}},
        {"webhook": {"enabled": False}},
    ],
    ids=["defaults", "namespaced-verbose", "no-webhook"],
)
def test_the_operators_own_parser_accepts_the_rendered_args(
    render: Render, values: dict[str, Any]
) -> None:
    options = importlib.import_module("peertap.operator.options")
    manifests = render(values)
    parsed = options.parse(_container(manifests)["args"], env={})
    assert parsed.namespaces == tuple(values.get("watchNamespaces", ()))
    assert parsed.no_webhook is (not values.get("webhook", {}).get("enabled", True))
    assert parsed.verbose is values.get("operator", {}).get("verbose", False)
    assert parsed.health_listen == "0.0.0.0:8080"
    assert parsed.metrics_listen == "0.0.0.0:9090"
    assert parsed.sidecar_image == "ghcr.io/peertap/peertap-sidecar:0.1.0"
    if not parsed.no_webhook:
        assert parsed.webhook_listen == "0.0.0.0:9443"
        assert parsed.webhook_service == f"{FULLNAME}-webhook.{NAMESPACE}"
        assert parsed.webhook_cert_secret == f"{NAMESPACE}/{FULLNAME}-webhook-cert"
        assert parsed.webhook_config_name == FULLNAME
        assert parsed.webhook_tls_dir is None


def test_match_all_pods_drops_the_label_selector_but_spares_system_namespaces(
    render: Render,
) -> None:
    config = _one(render({"webhook": {"matchAllPods": True}}), "MutatingWebhookConfiguration")
    (hook,) = config["webhooks"]
    assert "objectSelector" not in hook
    assert hook["namespaceSelector"] == {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": ["kube-system", NAMESPACE],
            }
        ]
    }


def test_match_all_pods_in_watched_namespaces_selects_only_those(render: Render) -> None:
    values = {"webhook": {"matchAllPods": True}, "watchNamespaces": ["team-a"]}
    (hook,) = _one(render(values), "MutatingWebhookConfiguration")["webhooks"]
    assert "objectSelector" not in hook
    assert hook["namespaceSelector"]["matchExpressions"][1]["operator"] == "In"
    assert hook["namespaceSelector"]["matchExpressions"][1]["values"] == ["team-a"]
