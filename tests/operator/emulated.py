"""Reading the cluster under test (the real API server): objects of namespace "default" by name."""

from __future__ import annotations

import base64
from typing import Any

import yaml
from operator_harness import ROOT, ClusterView

EXAMPLES = ROOT / "deploy" / "examples"
NS = "default"


def cryptovlan(emulator: ClusterView, name: str = "lab") -> dict[str, Any]:
    return emulator.objects("peertap.io/v1alpha1/cryptovlans", NS).get(name, {})


def secrets(emulator: ClusterView) -> dict[str, dict[str, Any]]:
    return emulator.objects("v1/secrets", NS)


def configmaps(emulator: ClusterView) -> dict[str, dict[str, Any]]:
    return emulator.objects("v1/configmaps", NS)


def decoded(secret: dict[str, Any], key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return None


def members(emulator: ClusterView, name: str = "lab") -> list[dict[str, Any]]:
    return list((cryptovlan(emulator, name).get("status") or {}).get("members") or [])


def pod_yaml(name: str, labels: dict[str, str]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
        }
    )
