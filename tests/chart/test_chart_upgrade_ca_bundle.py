"""Upgrades keep the caBundle the operator patched into the live webhook configurations.

Rendered cluster-aware by Helm against the real test API server (tests/kube), so
the templates' `lookup` reads live API objects.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]
from kube.controlplane import ControlPlane

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "peertap"
RELEASE, NAMESPACE, CONFIG_NAME = "pt", "peertap-system", "pt-peertap"
ADMISSION = "/apis/admissionregistration.k8s.io/v1"


@pytest.fixture
def cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    control_plane.wipe()
    try:
        yield control_plane
    finally:
        control_plane.wipe()


def _bundle(text: str) -> str:
    pem = f"-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----\n"
    return base64.b64encode(pem.encode()).decode()


def _live_config(kind: str, bundles: dict[str, str | None]) -> dict[str, Any]:
    webhooks = []
    for name, bundle in bundles.items():
        client: dict[str, Any] = {"service": {"name": "old", "namespace": NAMESPACE}}
        if bundle is not None:
            client["caBundle"] = bundle
        webhooks.append(
            {
                "name": name,
                "clientConfig": client,
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
            }
        )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": CONFIG_NAME},
        "webhooks": webhooks,
    }


def _render(cluster: ControlPlane, *, is_upgrade: bool) -> dict[str, dict[str, Any]]:
    """Rendered webhook configurations by kind, with lookup against the cluster."""
    with (
        helm.Config(kubeconfig_path=cluster.kubeconfig, namespace=NAMESPACE) as config,
        helm.Chart.load(CHART_DIR) as chart,
    ):
        files = config.render(
            chart,
            {},
            name=RELEASE,
            namespace=NAMESPACE,
            is_upgrade=is_upgrade,
            is_install=not is_upgrade,
        )
    out = {}
    for path, text in files.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc and doc["kind"].endswith("WebhookConfiguration"):
                out[doc["kind"]] = doc
    return out


def _bundles(config: dict[str, Any]) -> dict[str, str | None]:
    return {h["name"]: h["clientConfig"].get("caBundle") for h in config["webhooks"]}


def test_upgrade_keeps_each_webhooks_live_ca_bundle(cluster: ControlPlane) -> None:
    pods, cvlans = _bundle("pods"), _bundle("cryptovlans")
    cluster.request(
        "POST",
        f"{ADMISSION}/mutatingwebhookconfigurations",
        _live_config("MutatingWebhookConfiguration", {"pods.peertap.io": pods}),
    )
    cluster.request(
        "POST",
        f"{ADMISSION}/validatingwebhookconfigurations",
        _live_config(
            "ValidatingWebhookConfiguration",
            {"cryptovlans.peertap.io": cvlans, "mvlans.peertap.io": None},
        ),
    )
    rendered = _render(cluster, is_upgrade=True)
    assert _bundles(rendered["MutatingWebhookConfiguration"]) == {"pods.peertap.io": pods}
    assert _bundles(rendered["ValidatingWebhookConfiguration"]) == {
        "cryptovlans.peertap.io": cvlans,
        "mvlans.peertap.io": None,
    }
    for manifest in rendered.values():
        kubernetes_validate.validate(manifest, "1.31.0", strict=True)
        for hook in manifest["webhooks"]:
            assert hook["clientConfig"]["service"]["name"] == f"{CONFIG_NAME}-webhook"


def test_first_install_renders_no_ca_bundle(cluster: ControlPlane) -> None:
    rendered = _render(cluster, is_upgrade=False)
    assert set(rendered) == {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    for manifest in rendered.values():
        assert set(_bundles(manifest).values()) == {None}
