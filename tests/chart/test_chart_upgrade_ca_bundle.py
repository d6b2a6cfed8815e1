"""Upgrades keep the caBundle the operator patched into the live webhook configurations.

Rendered cluster-aware by Helm against kmock's Kubernetes emulator over HTTP, so
the templates' `lookup` reads real API objects.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kmock
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "peertap"
RELEASE, NAMESPACE, CONFIG_NAME = "pt", "peertap-system", "pt-peertap"
ADMISSION = "/apis/admissionregistration.k8s.io/v1"


class Cluster:
    """kmock's emulator served from its own event loop in a thread."""

    def __init__(self) -> None:
        self.emulator = kmock.KubernetesEmulator()
        self.emulator.resources.load_bundled()
        self._loop = asyncio.new_event_loop()
        self._port: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self.emulator, kmock.Server(self.emulator) as server:
            self._port.set_result(server.port)
            await self._stop.wait()

    def __enter__(self) -> Cluster:
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._port.result(timeout=30)}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def create(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 201)

    def kubeconfig(self) -> str:
        return str(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
                    "users": [{"name": "tester", "user": {"token": "unused"}}],
                    "contexts": [
                        {"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}
                    ],
                    "current-context": "emulator",
                }
            )
        )


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster() as running:
        yield running


def _bundle(text: str) -> str:
    pem = f"-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----\n"
    return base64.b64encode(pem.encode()).decode()


def _live_config(kind: str, bundles: dict[str, str | None]) -> dict[str, Any]:
    webhooks = []
    for name, bundle in bundles.items():
        client: dict[str, Any] = {"service": {"name": "old", "namespace": NAMESPACE}}
        if bundle is not None:
            client["caBundle"] = bundle
        webhooks.append({"name": name, "clientConfig": client})
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": CONFIG_NAME},
        "webhooks": webhooks,
    }


def _render(cluster: Cluster, *, is_upgrade: bool) -> dict[str, dict[str, Any]]:
    """Rendered webhook configurations by kind, with lookup against the cluster."""
    with (
        helm.Config(kubeconfig_content=cluster.kubeconfig(), namespace=NAMESPACE) as config,
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


def test_upgrade_keeps_each_webhooks_live_ca_bundle(cluster: Cluster) -> None:
    pods, cvlans = _bundle("pods"), _bundle("cryptovlans")
    cluster.create(
        f"{ADMISSION}/mutatingwebhookconfigurations",
        _live_config("MutatingWebhookConfiguration", {"pods.peertap.io": pods}),
    )
    cluster.create(
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


def test_first_install_renders_no_ca_bundle(cluster: Cluster) -> None:
    rendered = _render(cluster, is_upgrade=False)
    assert set(rendered) == {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    for manifest in rendered.values():
        assert set(_bundles(manifest).values()) == {None}
