"""Starlette routes of the web UI: /ui/ (the page), /ui/static/* (assets), /ui/view.json,
and, with `api.vlan_control`, POST /ui/vlans/{label}/join and /ui/vlans/{label}/leave.

The page and its assets are served from files inside the package (no CDN, works
offline). Responses forbid framing and outside scripts, and are never cached, so a
page left open always shows the node's latest snapshot.

Join and leave answer 403 unless the node's config enables them and the request comes
from loopback, addressed to a loopback host (no DNS rebinding), and, when a browser
sends it, from this page's own origin (no cross-site request from another page open in
the same browser). Their answers never hold a key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import is_loopback_host
from ..vlan_control import ACTIONS, VlanControlError
from . import view

PREFIX = "/ui"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def asset(name: str) -> bytes | None:
    """A file of the package's static/ folder, None when there is no such file."""
    if "/" in name or name.startswith(".") or not any(name.endswith(x) for x in MEDIA_TYPES):
        return None
    path = resources.files(__package__ or "peertap.sidecar.ui").joinpath("static", name)
    return path.read_bytes() if path.is_file() else None


def _file(name: str) -> Response:
    body = asset(name)
    if body is None:
        return Response("not found\n", 404, headers=SECURITY_HEADERS, media_type="text/plain")
    media = next(m for ext, m in MEDIA_TYPES.items() if name.endswith(ext))
    return Response(body, headers=SECURITY_HEADERS, media_type=media)


def _host_of(netloc: str) -> str:
    return urlsplit("//" + netloc).hostname or ""


def local_request(request: Request) -> str | None:
    """Why a control request is refused (None: it is the node's own host, same origin)."""
    client = request.client.host if request.client else ""
    if not is_loopback_host(client):
        return "VLAN control answers only loopback clients"
    host = request.headers.get("host", "")
    if not is_loopback_host(_host_of(host)):
        return "VLAN control answers only requests addressed to a loopback host"
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{host}":
        return "VLAN control answers only the node's own page (cross-origin request)"
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return "VLAN control answers only the node's own page (cross-site request)"
    return None


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status, headers=SECURITY_HEADERS)


def ui_routes(
    snapshot: Callable[[], Mapping[str, Any]],
    control: Callable[[str, str], dict[str, Any]] | None = None,
) -> list[BaseRoute]:
    """Routes for the page; `snapshot` returns the node's latest status document, and
    `control(action, label)` (None unless api.vlan_control) joins or leaves a VLAN; it
    blocks, so it runs in a worker thread."""

    async def index(request: Request) -> Response:
        return _file("index.html")

    async def static(request: Request) -> Response:
        return _file(str(request.path_params["name"]))

    async def view_json(request: Request) -> Response:
        allowed = control is not None and local_request(request) is None
        return JSONResponse(view.build(snapshot(), join_leave=allowed), headers=SECURITY_HEADERS)

    async def vlan_action(request: Request) -> Response:
        action = str(request.path_params["action"])
        if action not in ACTIONS:
            return _error(404, f"no action {action!r} (join or leave)")
        if control is None:
            return _error(403, "VLAN control is off in this node's config (api.vlan_control)")
        refused = local_request(request)
        if refused is not None:
            return _error(403, refused)
        try:
            answer = await run_in_threadpool(control, action, str(request.path_params["label"]))
        except VlanControlError as err:
            return _error(err.status, err.message)
        return JSONResponse(answer, headers=SECURITY_HEADERS)

    async def redirect(request: Request) -> Response:
        return RedirectResponse(PREFIX + "/")

    return [
        Route(PREFIX, redirect),
        Route(PREFIX + "/", index),
        Route(PREFIX + "/view.json", view_json),
        Route(PREFIX + "/static/{name}", static),
        Route(PREFIX + "/vlans/{label}/{action}", vlan_action, methods=["POST"]),
    ]
