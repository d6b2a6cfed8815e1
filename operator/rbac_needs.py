"""API access the operator needs, as Kubernetes PolicyRules the chart's ClusterRole must cover.

- peertap.io cryptovlans, mvlans: watch and reconcile; patch for kopf's
  finalizer and annotations; status subresources for status.
- pods: watch members (read only; the webhook mutates pods at admission).
- secrets: authority keys, member node keys, credentials, relay key, and the
  webhook certificate Secret (create once, read, patch, delete on cleanup).
- configmaps: per-VLAN shared config and allocations, per-pod node.json,
  relay config.
- services, deployments: the MVLAN relay.
- nodes: node addresses for NodePort relay addresses (read only).
- events: kopf posts warnings about handler failures; the cluster page lists the
  recent ones about CryptoVLANs and MVLANs.
- mutating/validatingwebhookconfigurations: patch caBundle at start.
- apiextensions customresourcedefinitions: kopf's resource discovery.
- namespaces: kopf lists them when watching all namespaces.
- kopf.dev clusterkopfpeerings, kopfpeerings: leader election between the
  operator replicas (`--peering`).
"""

from __future__ import annotations

from typing import Any

READ = ["get", "list", "watch"]
WRITE = ["create", "patch", "update", "delete"]

RBAC_RULES: list[dict[str, Any]] = [
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
    {"apiGroups": [""], "resources": ["pods"], "verbs": READ},
    {
        "apiGroups": [""],
        "resources": ["secrets", "configmaps", "services"],
        "verbs": [*READ, *WRITE],
    },
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": [*READ, *WRITE]},
    {"apiGroups": [""], "resources": ["nodes", "namespaces"], "verbs": READ},
    {
        "apiGroups": ["", "events.k8s.io"],
        "resources": ["events"],
        "verbs": ["list", "create", "patch"],
    },
    {
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
        "verbs": ["get", "list", "watch", "patch", "update"],
    },
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": READ,
    },
    {
        "apiGroups": ["kopf.dev"],
        "resources": ["clusterkopfpeerings", "kopfpeerings"],
        "verbs": [*READ, "patch"],
    },
]
