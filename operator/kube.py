"""The operator's only door to the Kubernetes API: plain-dict REST calls via `kubernetes`.

The official client supplies configuration (kubeconfig or in-cluster service
account, TLS, tokens); requests and responses stay plain JSON dicts so every
resource, custom or built-in, goes through the same five verbs. Calls run in a
worker thread so they never block kopf's event loop. Nothing here logs bodies:
Secrets pass through.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any, cast

import kubernetes
import urllib3

JsonObj = dict[str, Any]


class KubeError(Exception):
    """The API server answered a request with an error status."""

    def __init__(self, status: int, message: str, *, what: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {message}")
        self.status = status


class NotFound(KubeError):
    """The object (or its resource type) does not exist."""


class Conflict(KubeError):
    """The object already exists, or a precondition failed."""


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


PODS = Resource("", "v1", "pods")
SECRETS = Resource("", "v1", "secrets")
CONFIGMAPS = Resource("", "v1", "configmaps")
SERVICES = Resource("", "v1", "services")
NODES = Resource("", "v1", "nodes")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
CRYPTOVLANS = Resource("peertap.io", "v1alpha1", "cryptovlans")
MVLANS = Resource("peertap.io", "v1alpha1", "mvlans")
MUTATING_WEBHOOKS = Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
VALIDATING_WEBHOOKS = Resource(
    "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"
)


def load_client() -> Any:
    """An ApiClient from the in-cluster service account, else from the kubeconfig."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        # Read KUBECONFIG now: the client's default is fixed when it is imported.
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG") or None,
            client_configuration=configuration,
        )
    return kubernetes.client.ApiClient(configuration)


class KubeApi:
    def __init__(self, api_client: Any) -> None:
        self._client = api_client

    def _call(
        self, method: str, path: str, *, body: Any = None, content_type: str | None = None
    ) -> JsonObj:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        _, url, headers, body, _ = self._client.param_serialize(
            method=method,
            resource_path=path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._client.call_api(method, url, header_params=headers, body=body)
        except kubernetes.client.ApiException as err:
            raise KubeError(err.status or 0, str(err.reason), what=f"{method} {path}") from err
        except urllib3.exceptions.HTTPError as err:
            # Connection refused, timeouts, TLS failures: the API server is unreachable.
            raise KubeError(0, f"unreachable: {err}", what=f"{method} {path}") from err
        data = response.read()
        status = int(response.status)
        if status >= 400:
            message = _message(data)
            if status == 404:
                raise NotFound(status, message, what=f"{method} {path}")
            if status == 409:
                raise Conflict(status, message, what=f"{method} {path}")
            raise KubeError(status, message, what=f"{method} {path}")
        if not data:
            return {}
        return cast(JsonObj, json.loads(data))

    async def get(self, path: str) -> JsonObj | None:
        try:
            return await asyncio.to_thread(self._call, "GET", path)
        except NotFound:
            return None

    async def list_objects(self, path: str) -> list[JsonObj]:
        result = await asyncio.to_thread(self._call, "GET", path)
        # The items of a list carry no kind or apiVersion (only the list does); owner
        # references made from them need both, as clients' typed lists restore them.
        kind = str(result.get("kind") or "").removesuffix("List")
        api_version = result.get("apiVersion")
        items = list(result.get("items") or [])
        for item in items:
            if kind:
                item.setdefault("kind", kind)
            if api_version:
                item.setdefault("apiVersion", api_version)
        return items

    async def create(self, path: str, body: JsonObj) -> JsonObj:
        return await asyncio.to_thread(
            self._call, "POST", path, body=body, content_type="application/json"
        )

    async def patch(self, path: str, body: JsonObj | list[JsonObj]) -> JsonObj:
        """A JSON merge patch (dict) or a JSON patch (list of operations)."""
        content_type = (
            "application/json-patch+json"
            if isinstance(body, list)
            else "application/merge-patch+json"
        )
        return await asyncio.to_thread(
            self._call, "PATCH", path, body=body, content_type=content_type
        )

    async def delete(self, path: str) -> bool:
        """Delete; False when it was already gone."""
        try:
            await asyncio.to_thread(self._call, "DELETE", path)
        except NotFound:
            return False
        return True


def _message(data: bytes | None) -> str:
    try:
        doc = json.loads(data or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return (data or b"")[:200].decode("utf-8", "replace")
    if isinstance(doc, dict):
        return str(doc.get("message") or doc.get("reason") or "")
    return ""
