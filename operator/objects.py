"""Shapes of the Kubernetes objects the operator owns: labels, owner references, Secret data."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

JsonObj = dict[str, Any]

MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR = "peertap-operator"
COMPONENT = "peertap.io/component"
VLAN_LABEL = "peertap.io/cryptovlan"
MEMBER_KEY = "peertap.io/member"

AUTHORITY = "vlan-authority"
VLAN_CONFIG = "vlan-config"
MEMBER_NODE_KEY = "member-key"
MEMBER_CREDENTIALS = "member-credentials"
MEMBER_CONFIG = "member-config"
RELAY_KEY = "relay-key"
RELAY_CREDENTIALS = "relay-credentials"
RELAY_CONFIG = "relay-config"


def owner_ref(obj: Mapping[str, Any], *, controller: bool = True) -> JsonObj:
    meta = obj.get("metadata", {})
    return {
        "apiVersion": obj.get("apiVersion", "v1"),
        "kind": obj.get("kind", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def metadata(
    *,
    name: str,
    namespace: str,
    component: str,
    owner: Mapping[str, Any] | None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> JsonObj:
    meta: JsonObj = {
        "name": name,
        "namespace": namespace,
        "labels": {MANAGED_BY: OPERATOR, COMPONENT: component, **(labels or {})},
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner is not None:
        meta["ownerReferences"] = [owner_ref(owner)]
    return meta


def secret(*, meta: JsonObj, data: Mapping[str, str]) -> JsonObj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": encode(data),
    }


def configmap(*, meta: JsonObj, data: Mapping[str, str]) -> JsonObj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def encode(data: Mapping[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}


def decode(data: Mapping[str, str] | None) -> dict[str, str]:
    out = {}
    for k, v in (data or {}).items():
        try:
            out[k] = base64.b64decode(v).decode()
        except (ValueError, UnicodeDecodeError):
            continue
    return out


def managed(obj: Mapping[str, Any], component: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY) == OPERATOR and labels.get(COMPONENT) == component)


def name_of(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("annotations") or {})


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})
