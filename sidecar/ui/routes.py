"""Starlette routes of the web UI: /ui/ (the page), /ui/static/* (assets), /ui/view.json.

Everything is read-only and served from files inside the package (no CDN, works
offline). Responses forbid framing and outside scripts, and are never cached, so a
page left open always shows the node's latest snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

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


def ui_routes(snapshot: Callable[[], Mapping[str, Any]]) -> list[BaseRoute]:
    """Routes for the page; `snapshot` returns the node's latest status document."""

    async def index(request: Request) -> Response:
        return _file("index.html")

    async def static(request: Request) -> Response:
        return _file(str(request.path_params["name"]))

    async def view_json(request: Request) -> Response:
        return JSONResponse(view.build(snapshot()), headers=SECURITY_HEADERS)

    async def redirect(request: Request) -> Response:
        return RedirectResponse(PREFIX + "/")

    return [
        Route(PREFIX, redirect),
        Route(PREFIX + "/", index),
        Route(PREFIX + "/view.json", view_json),
        Route(PREFIX + "/static/{name}", static),
    ]
