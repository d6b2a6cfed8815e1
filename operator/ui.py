"""The operator's read-only web page for the cluster: /ui/ and /ui/cluster.json.

Served on its own listener (`--ui-listen`, loopback by default: reach it with
`kubectl port-forward`). Each request lists CryptoVLANs, MVLANs and Events in the
watched namespaces through `kube` and reduces them with `cluster_view`; the page
polls it. Static files come from the package (no CDN). Nothing here writes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from typing import Any

from aiohttp import web

from . import cluster_view, kube

log = logging.getLogger(__name__)

EVENTS = kube.Resource("", "v1", "events")
STATIC = "ui_static"
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def asset(name: str) -> tuple[bytes, str] | None:
    """A file of the page (body, media type), None if there is no such file."""
    media = next((m for ext, m in MEDIA_TYPES.items() if name.endswith(ext)), None)
    if media is None or "/" in name or name.startswith("."):
        return None
    path = resources.files(__package__ or "peertap.operator").joinpath(STATIC, name)
    return (path.read_bytes(), media) if path.is_file() else None


async def _list(
    api: kube.KubeApi, resource: kube.Resource, namespaces: Sequence[str], errors: list[str]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    scopes: list[str | None] = [*namespaces] or [None]
    for ns in scopes:
        try:
            out += await api.list_objects(resource.path(ns))
        except kube.KubeError as err:
            log.debug("ui: cannot list %s: %s", resource.plural, err)
            errors.append(f"{resource.plural}: {err}")
    return out


async def snapshot(api: kube.KubeApi, namespaces: Sequence[str]) -> dict[str, Any]:
    errors: list[str] = []
    cvlans = await _list(api, kube.CRYPTOVLANS, namespaces, errors)
    mvlans = await _list(api, kube.MVLANS, namespaces, errors)
    events = await _list(api, EVENTS, namespaces, errors)
    return cluster_view.build(
        cryptovlans=cvlans, mvlans=mvlans, events=events, errors=errors, namespaces=namespaces
    )


def app(api: kube.KubeApi, *, namespaces: Sequence[str] = ()) -> web.Application:
    def file(name: str) -> web.Response:
        found = asset(name)
        if found is None:
            return web.Response(status=404, text="not found\n", headers=SECURITY_HEADERS)
        body, media = found
        return web.Response(body=body, content_type=media, headers=SECURITY_HEADERS)

    async def root(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/ui/")

    async def index(request: web.Request) -> web.Response:
        return file("index.html")

    async def static(request: web.Request) -> web.Response:
        return file(request.match_info["name"])

    async def cluster(request: web.Request) -> web.Response:
        return web.json_response(await snapshot(api, namespaces), headers=SECURITY_HEADERS)

    application = web.Application()
    application.router.add_get("/", root)
    application.router.add_get("/ui", root)
    application.router.add_get("/ui/", index)
    application.router.add_get("/ui/cluster.json", cluster)
    application.router.add_get("/ui/static/{name}", static)
    return application
