"""A Kubernetes API for tests: kmock's KubernetesEmulator minus the gaps our tools hit.

Fixed here (kmock 0.8):
- list responses carry `kind: <Kind>List` and `apiVersion`;
- core discovery (`/api/v1`) says groupVersion `v1`, not `/v1`;
- POSTed CustomResourceDefinitions register their resource for discovery;
- objects get uid, resourceVersion, creationTimestamp and generation
  (bumped on spec changes), and generateName works;
- `GET /api/v1/namespaces[/<name>]` is parsed as the namespaces resource;
- a JSON patch whose `test` fails answers 422 (kopf retries), not 500;
- a watch subscribes to changes before it replays the current objects, so no
  change made in between is lost, and replays only objects newer than the
  requested resourceVersion (kopf would otherwise act twice on a stale copy).

Not emulated: admission calls (tests POST AdmissionReviews themselves),
OpenAPI (kubectl runs with --validate=false), PUT, label selectors,
garbage collection of owned objects.

`EmulatorThread` runs the server on its own event loop in a thread, so kopf
(also in a thread) and kubectl (a subprocess) reach it over real HTTP.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import datetime as dt
import itertools
import threading
import uuid
from typing import Any

import attrs
import jsonpatch
import jsonpointer
import kmock
from kmock._internal import enums, parsing, rendering

_original_parse_path = parsing.parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) in (3, 4):
        return parsing.ParsedPath(
            group="", version="v1", plural="namespaces", name=parts[3] if len(parts) == 4 else None
        )
    return _original_parse_path(path)


parsing.parse_path = _parse_path


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    _versions: Any = attrs.field(factory=lambda: itertools.count(1000), init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.resources.load_bundled()

    def _info(self, resource: Any) -> Any:
        # Not .get(): kmock's ResourcesArray creates missing entries on lookup.
        return self.resources[resource] if resource in self.resources else None  # noqa: SIM401

    async def _handle(self, request: rendering.Request) -> Any:
        if request.resource is not None and request.subresource is None:
            if request.action == enums.action.CREATE and isinstance(request.data, dict):
                self._stamp_new(request)
            elif request.action == enums.action.UPDATE:
                self._stamp_update(request)
        elif request.resource is not None and request.action == enums.action.UPDATE:
            self._stamp_update(request)
        try:
            response = await super()._handle(request)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as err:
            # A failed `test` op (kopf's optimistic concurrency) is 422 on a real server.
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(err)) from err
        if (
            request.action == enums.action.CREATE
            and request.resource
            == kmock.resource("apiextensions.k8s.io/v1/customresourcedefinitions")
            and isinstance(request.data, dict)
        ):
            self._register_crd(request.data)
        return response

    def _stamp_new(self, request: rendering.Request) -> None:
        meta = request.data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = str(next(self._versions))
        meta["creationTimestamp"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["generation"] = 1
        if request.namespace and not meta.get("namespace"):
            meta["namespace"] = request.namespace
        info = self._info(request.resource)
        if info is not None and info.kind:
            request.data.setdefault("kind", info.kind)
            group, version = request.resource.group, request.resource.version
            request.data.setdefault("apiVersion", f"{group}/{version}" if group else version)

    def _stamp_update(self, request: rendering.Request) -> None:
        version = str(next(self._versions))
        key = (request.resource, request.namespace, request.name)
        current = self.objects[key].raw if key in self.objects else {}
        generation = int((current.get("metadata") or {}).get("generation") or 1)
        data = request.data
        if isinstance(data, dict):
            spec_changed = (
                request.subresource is None
                and "spec" in data
                and _merged(current.get("spec"), data["spec"]) != current.get("spec")
            )
            meta = data.setdefault("metadata", {}) if data.get("metadata") is not None else None
            if meta is None:
                data["metadata"] = meta = {}
            meta["resourceVersion"] = version
            if spec_changed:
                meta["generation"] = generation + 1
        elif isinstance(data, list):
            data.append({"op": "add", "path": "/metadata/resourceVersion", "value": version})

    def _register_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        for version in spec.get("versions", []):
            key = f"{spec['group']}/{version['name']}/{names['plural']}"
            self.resources[key] = kmock.ResourceInfo(
                kind=names.get("kind"),
                singular=names.get("singular"),
                namespaced=spec.get("scope") == "Namespaced",
                shortnames=set(names.get("shortNames", [])),
                categories=set(names.get("categories", [])),
                verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
                subresources=set(version.get("subresources", {})),
            )

    async def _serve_list(self, request: rendering.Request) -> Any:
        payload = await super()._serve_list(request)
        info = self._info(request.resource)
        group, version = request.resource.group, request.resource.version
        payload["apiVersion"] = f"{group}/{version}" if group else version
        kind = info.kind if info is not None and info.kind else request.resource.plural.capitalize()
        payload["kind"] = f"{kind}List"
        payload["metadata"] = {"resourceVersion": str(next(self._versions))}
        return payload

    async def _serve_watch(self, request: rendering.Request) -> Any:
        # Subscribe before the snapshot: kmock subscribes after it, and an event
        # written in between is lost (kopf then waits forever on a stale object).
        yield b""
        bus = self._buses[request.resource]
        async with self._lock:
            marker = await bus.mark()
            objs = self._KubernetesEmulator__get_objs(request, strict=False)  # type: ignore[attr-defined]
            since = _version(request.params.get("resourceVersion"))
            events = [
                {"type": "ADDED", "object": o.raw}
                for o in objs
                if not o.deleted and _version(o.raw["metadata"].get("resourceVersion")) > since
            ]
        try:
            for event in events:
                yield event
            async for event in bus.stream(since=marker):
                meta = event.get("object", {}).get("metadata", {})
                if self._KubernetesEmulator__check(  # type: ignore[attr-defined]
                    request, request.resource, meta.get("namespace"), meta.get("name"), strict=False
                ):
                    yield event
        finally:
            await bus.unmark(marker)

    async def _serve_version(self, request: rendering.Request) -> Any:
        payload = await super()._serve_version(request)
        if isinstance(payload, dict) and payload.get("groupVersion", "").startswith("/"):
            payload["groupVersion"] = payload["groupVersion"][1:]
        return payload


def _version(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def _merged(current: Any, patch: Any) -> Any:
    if isinstance(current, dict) and isinstance(patch, dict):
        out = copy.deepcopy(current)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = _merged(out.get(k), v)
        return out
    return patch


class EmulatorThread:
    """The emulator served on 127.0.0.1 from a private event loop in a daemon thread."""

    def __init__(self) -> None:
        self.emulator = KubeEmulator()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = concurrent.futures.Future[int]()
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with self.emulator, kmock.Server(self.emulator) as server:
                self._ready.set_result(server.port)
                await self._stop.wait()
        except BaseException as err:
            if not self._ready.done():
                self._ready.set_exception(err)
            raise

    def start(self) -> EmulatorThread:
        self._thread.start()
        self.port = self._ready.result(timeout=30)
        return self

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def objects(self, resource: str, namespace: str | None = None) -> dict[str, dict[str, Any]]:
        """Live objects of a resource ('v1/secrets', 'peertap.io/v1alpha1/cryptovlans') by name."""

        async def read() -> dict[str, dict[str, Any]]:
            out = {}
            for (res, ns, name), obj in list(self.emulator.objects.items()):
                wanted = res == kmock.resource(resource) and not obj.deleted
                if wanted and (namespace is None or ns == namespace):
                    out[name] = copy.deepcopy(dict(obj.raw))
            return out

        return asyncio.run_coroutine_threadsafe(read(), self._loop).result(timeout=10)
