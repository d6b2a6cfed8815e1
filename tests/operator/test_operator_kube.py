"""The operator's API client against the real API server over HTTPS."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import kubernetes
import pytest
from kube.controlplane import ControlPlane

from peertap.operator import kube


def _client(url: str, cp: ControlPlane | None = None) -> kube.KubeApi:
    config = kubernetes.client.Configuration()
    config.host = url
    config.retries = False
    if cp is not None:
        config.ssl_ca_cert = str(cp.pki.ca_cert)
        config.cert_file = str(cp.pki.admin_cert)
        config.key_file = str(cp.pki.admin_key)
    return kube.KubeApi(kubernetes.client.ApiClient(config))


@pytest.fixture
def api(control_plane: ControlPlane) -> Iterator[kube.KubeApi]:
    if "ns" not in _namespaces(control_plane):
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}
        control_plane.request("POST", "/api/v1/namespaces", namespace)
    try:
        yield _client(control_plane.server, control_plane)
    finally:
        control_plane.wipe()


def _namespaces(cp: ControlPlane) -> set[str]:
    return {n["metadata"]["name"] for n in cp.request("GET", "/api/v1/namespaces")["items"]}


def _cm(name: str, data: dict[str, str]) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_create_get_patch_list_delete_round_trip(api: kube.KubeApi) -> None:
    async def run() -> None:
        path = kube.CONFIGMAPS.path("ns")
        await api.create(path, _cm("a", {"x": "1", "y": "2"}))
        with pytest.raises(kube.Conflict):
            await api.create(path, _cm("a", {}))
        merged = await api.patch(kube.CONFIGMAPS.path("ns", "a"), {"data": {"x": None, "z": "3"}})
        assert merged["data"] == {"y": "2", "z": "3"}
        patched = await api.patch(
            kube.CONFIGMAPS.path("ns", "a"), [{"op": "replace", "path": "/data/y", "value": "9"}]
        )
        assert patched["data"]["y"] == "9"
        # Every namespace also holds the cluster's CA bundle, which the controller manager
        # publishes shortly after the namespace appears.
        for _ in range(300):
            names = {o["metadata"]["name"] for o in await api.list_objects(path)}
            if "kube-root-ca.crt" in names:
                break
            await asyncio.sleep(0.1)
        assert names == {"a", "kube-root-ca.crt"}
        assert await api.delete(kube.CONFIGMAPS.path("ns", "a")) is True
        assert await api.delete(kube.CONFIGMAPS.path("ns", "a")) is False
        assert await api.get(kube.CONFIGMAPS.path("ns", "a")) is None

    asyncio.run(run())


def test_patching_a_missing_object_is_not_found(api: kube.KubeApi) -> None:
    with pytest.raises(kube.NotFound, match="PATCH /api/v1/namespaces/ns/configmaps/nope"):
        asyncio.run(api.patch(kube.CONFIGMAPS.path("ns", "nope"), {"data": {}}))


def test_unreachable_server_is_a_kube_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = _client(f"http://127.0.0.1:{port}")
    with pytest.raises(kube.KubeError, match="unreachable"):
        asyncio.run(api.get(kube.PODS.path("ns")))


def test_resource_paths() -> None:
    assert kube.PODS.path() == "/api/v1/pods"
    assert kube.CRYPTOVLANS.path("ns", "lab", "status") == (
        "/apis/peertap.io/v1alpha1/namespaces/ns/cryptovlans/lab/status"
    )
    assert kube.MUTATING_WEBHOOKS.path(None, "x") == (
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/x"
    )
