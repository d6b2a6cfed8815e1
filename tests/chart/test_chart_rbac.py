"""The operator's RBAC is least privilege: exact rules, no wildcards, Roles per namespace."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

import pytest

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]
Grant = tuple[str, str, str, str]  # (apiGroup, resource, resourceName or "", verb)

NAMESPACE = "peertap-system"  # the namespace the render fixture installs into
FULLNAME = "pt-peertap"

CRUD = ("get", "list", "watch", "create", "patch", "update", "delete")
READ = ["get", "list", "watch"]

# What the chart grants; peertap.operator.rbac_needs.RBAC_RULES plus CHART_EXTRAS.
NAMESPACED_NEEDS: list[dict[str, Any]] = [
    {
        "apiGroups": ["peertap.io"],
        "resources": ["cryptovlans", "mvlans"],
        "verbs": [*READ, "patch", "update"],
    },
    {
        "apiGroups": ["peertap.io"],
        "resources": ["cryptovlans/status", "mvlans/status"],
        "verbs": ["get", "patch", "update"],
    },
    {
        "apiGroups": ["peertap.io"],
        "resources": ["cryptovlans/finalizers", "mvlans/finalizers"],
        "verbs": ["update"],
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": READ},
    {"apiGroups": [""], "resources": ["secrets", "configmaps", "services"], "verbs": list(CRUD)},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": list(CRUD)},
    # list: the operator's cluster page shows recent Events about its resources.
    {
        "apiGroups": ["", "events.k8s.io"],
        "resources": ["events"],
        "verbs": ["list", "create", "patch"],
    },
    # Leader election between the operator replicas (kopf peering).
    {"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings"], "verbs": [*READ, "patch"]},
]
CLUSTER_NEEDS: list[dict[str, Any]] = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": READ,
    },
    {"apiGroups": [""], "resources": ["namespaces", "nodes"], "verbs": READ},
    {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": [*READ, "patch"]},
    {
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
        "resourceNames": [FULLNAME],
        "verbs": [*READ, "patch", "update"],
    },
]
# Grants beyond the operator's declaration, documented in docs/operations.md: owner
# references with blockOwnerDeletion need update on the owner's finalizers where the
# OwnerReferencesPermissionEnforcement admission plugin runs.
CHART_EXTRAS = {
    ("peertap.io", "cryptovlans/finalizers", "", "update"),
    ("peertap.io", "mvlans/finalizers", "", "update"),
}


def grants(rules: Iterable[dict[str, Any]]) -> set[Grant]:
    """Flatten PolicyRules into single (group, resource, name, verb) grants."""
    flat: set[Grant] = set()
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for name in rule.get("resourceNames") or [""]:
                    for verb in rule["verbs"]:
                        flat.add((group, resource, name, verb))
    return flat


def _roles(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def _all_rules(manifests: list[Manifest]) -> list[dict[str, Any]]:
    return [
        rule
        for m in manifests
        if m["kind"] in ("ClusterRole", "Role")
        for rule in m.get("rules", [])
    ]


@pytest.mark.parametrize(
    "values",
    [{}, {"watchNamespaces": ["team-a"]}, {"webhook": {"enabled": False}}],
    ids=["cluster-wide", "namespaced", "no-webhook"],
)
def test_no_rule_uses_wildcards_or_escalation_verbs(render: Render, values: dict[str, Any]) -> None:
    for rule in _all_rules(render(values)):
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), f"wildcard in {field}: {rule}"
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
        assert "nonResourceURLs" not in rule


def test_cluster_wide_install_grants_exactly_the_agreed_rules(render: Render) -> None:
    manifests = render()
    (role,) = _roles(manifests, "ClusterRole")
    assert not _roles(manifests, "Role")
    assert grants(role["rules"]) == grants(NAMESPACED_NEEDS + CLUSTER_NEEDS)
    (binding,) = _roles(manifests, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
    ]


def test_webhook_configurations_are_reachable_only_by_name(render: Render) -> None:
    (role,) = _roles(render(), "ClusterRole")
    admission = [r for r in role["rules"] if "admissionregistration.k8s.io" in r["apiGroups"]]
    assert admission and all(r["resourceNames"] == [FULLNAME] for r in admission)


def test_no_webhook_drops_the_webhook_configuration_grant(render: Render) -> None:
    (role,) = _roles(render({"webhook": {"enabled": False}}), "ClusterRole")
    assert not [g for g in grants(role["rules"]) if g[0] == "admissionregistration.k8s.io"]


def test_watched_namespaces_get_roles_and_the_cluster_role_keeps_only_cluster_scope(
    render: Render,
) -> None:
    manifests = render({"watchNamespaces": ["team-a", "team-b"]})
    (cluster_role,) = _roles(manifests, "ClusterRole")
    assert grants(cluster_role["rules"]) == grants(CLUSTER_NEEDS)
    roles = {m["metadata"]["namespace"]: m for m in _roles(manifests, "Role") if m["rules"]}
    assert set(roles) == {"team-a", "team-b", NAMESPACE}
    for namespace in ("team-a", "team-b"):
        assert grants(roles[namespace]["rules"]) == grants(NAMESPACED_NEEDS)
    cert_secret = f"{FULLNAME}-webhook-cert"
    assert grants(roles[NAMESPACE]["rules"]) == {
        ("", "secrets", "", "create"),
        ("", "secrets", cert_secret, "get"),
        ("", "secrets", cert_secret, "patch"),
        ("", "secrets", cert_secret, "update"),
    }
    bindings = {m["metadata"]["namespace"]: m for m in _roles(manifests, "RoleBinding")}
    assert set(bindings) == set(roles)
    for namespace, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[namespace]["metadata"]["name"],
        }


def test_watching_the_release_namespace_needs_no_separate_certificate_role(
    render: Render,
) -> None:
    manifests = render({"watchNamespaces": [NAMESPACE]})
    assert [m["metadata"]["namespace"] for m in _roles(manifests, "Role")] == [NAMESPACE]


def test_rbac_create_false_renders_no_rbac(render: Render) -> None:
    kinds = {m["kind"] for m in render({"rbac": {"create": False}})}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def test_cluster_role_grants_the_operators_declared_needs_and_nothing_more(
    render: Render,
) -> None:
    rbac_needs = importlib.import_module("peertap.operator.rbac_needs")
    # resourceNames are left out of the comparison: the operator cannot know the
    # release's object names, and the chart only ever narrows a grant with them.
    needs = {(g, r, "", v) for g, r, _, v in grants(rbac_needs.RBAC_RULES)}
    (role,) = _roles(render(), "ClusterRole")
    held = {(g, r, "", v) for g, r, _, v in grants(role["rules"])}
    missing = needs - held
    assert not missing, f"ClusterRole lacks {sorted(missing)}"
    extra = held - needs - CHART_EXTRAS
    assert not extra, f"ClusterRole grants undeclared {sorted(extra)}"
