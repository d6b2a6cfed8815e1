"""A small synchronous door to one API server: plain JSON dicts over the `kubernetes` client."""

from __future__ import annotations

import json
from typing import Any, cast

import kubernetes

JsonObj = dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Api:
    def __init__(self, kubeconfig: str) -> None:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
        self.client = kubernetes.client.ApiClient(configuration)

    def call(
        self, method: str, path: str, body: Any = None, *, content_type: str | None = None
    ) -> JsonObj:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        _, url, headers, body, _ = self.client.param_serialize(
            method=method,
            resource_path=path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(method, url, header_params=headers, body=body)
        except kubernetes.client.ApiException as err:
            raise ApiError(err.status or 0, str(err.reason)) from err
        data = response.read()  # type: ignore[no-untyped-call]
        if int(response.status) >= 400:
            try:
                message = json.loads(data).get("message", "")
            except (ValueError, AttributeError):
                message = data[:200].decode("utf-8", "replace")
            raise ApiError(int(response.status), message)
        return cast(JsonObj, json.loads(data)) if data else {}

    def get(self, path: str) -> JsonObj | None:
        try:
            return self.call("GET", path)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def items(self, path: str) -> list[JsonObj]:
        return list(self.call("GET", path).get("items") or [])

    def merge_patch(self, path: str, body: JsonObj) -> JsonObj:
        return self.call("PATCH", path, body, content_type="application/merge-patch+json")
