"""The node API over real HTTP: health, readiness, status and Prometheus metrics."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from peertap.sidecar.api import ApiServer, StatusBoard
from peertap.sidecar.vlan_control import ThreadBridge


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def api() -> Iterator[tuple[StatusBoard, str]]:
    board = StatusBoard()
    port = free_port()
    server = ApiServer(board, f"127.0.0.1:{port}")
    server.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield board, f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_readiness_follows_the_published_snapshot(api: tuple[StatusBoard, str]) -> None:
    board, base = api
    assert get(base + "/healthz") == (200, "ok\n")
    assert get(base + "/readyz")[0] == 503
    board.publish({"ready": True})
    assert get(base + "/readyz") == (200, "ready\n")


def test_status_and_metrics_show_the_snapshot(api: tuple[StatusBoard, str]) -> None:
    board, base = api
    board.publish(
        {
            "ready": True,
            "peers": ["p1", "p2"],
            "routes": {"origins": 2, "tokens": 5},
            "counters": {"events": {"tap_rx": 7}, "drops": {"auth": 3}},
            "trunk": {"writes": 11},
        }
    )
    status, body = get(base + "/status")
    assert status == 200 and json.loads(body)["routes"] == {"origins": 2, "tokens": 5}
    status, metrics = get(base + "/metrics")
    assert status == 200
    for line in (
        'peertap_drops_total{reason="auth"} 3.0',
        'peertap_events_total{event="tap_rx"} 7.0',
        'peertap_trunk_total{counter="writes"} 11.0',
        "peertap_peers 2.0",
        'peertap_routes{table="tokens"} 5.0',
        "peertap_ready 1.0",
    ):
        assert line in metrics.splitlines()


def test_ui_page_and_assets_are_served_from_the_package(api: tuple[StatusBoard, str]) -> None:
    _, base = api
    code, page = get(base + "/ui/")
    assert code == 200 and "/ui/static/app.js" in page
    for name in ("app.js", "topology.js", "style.css"):
        assert get(base + f"/ui/static/{name}")[0] == 200
    with urllib.request.urlopen(base + "/ui/", timeout=5) as r:
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"
    assert get(base + "/ui/static/missing.js")[0] == 404
    assert get(base + "/ui/static/..%2Fview.py")[0] == 404
    with urllib.request.urlopen(base + "/ui", timeout=5) as r:
        assert r.url.endswith("/ui/")


def test_ui_view_shows_the_snapshot_but_no_unlisted_field(api: tuple[StatusBoard, str]) -> None:
    board, base = api
    board.publish(
        {
            "ready": True,
            "peer_id": "12D3KooWTest",
            "peers": ["12D3KooWPeer"],
            "vlans": [{"label": "lab", "interface": "pt-lab", "private_key": "SECRET"}],
            "counters": {"events": {}, "drops": {"auth": 1}},
        }
    )
    code, body = get(base + "/ui/view.json")
    assert code == 200 and "SECRET" not in body and "private_key" not in body
    doc = json.loads(body)
    assert doc["vlans"][0]["interface"] == "pt-lab"
    assert doc["drops"] == {"auth": 1}
    assert [e["b"] for e in doc["topology"]["edges"]] == ["12D3KooWPeer"]


def test_ui_is_read_only(api: tuple[StatusBoard, str]) -> None:
    _, base = api
    for path in ("/ui/", "/ui/view.json", "/ui/static/app.js"):
        request = urllib.request.Request(base + path, data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 405


def post(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=b"", method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_vlan_control_is_refused_when_the_config_does_not_enable_it(
    api: tuple[StatusBoard, str],
) -> None:
    _, base = api
    for action in ("leave", "join"):
        code, body = post(f"{base}/ui/vlans/lab/{action}")
        assert code == 403 and "api.vlan_control" in str(body["error"])
    view = json.loads(get(base + "/ui/view.json")[1])
    assert view["controls"] == {"join_leave": False}


@pytest.fixture
def controlled_api() -> Iterator[str]:
    """An API whose node would allow VLAN control but has not started its trio loop."""
    bridge = ThreadBridge(join=_never, leave=_never)
    port = free_port()
    server = ApiServer(StatusBoard(), f"127.0.0.1:{port}", control=bridge)
    server.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def _never(label: str) -> dict[str, object]:
    raise AssertionError("the node is not running: nothing may reach it")


def test_vlan_control_refuses_other_origins_and_hosts(controlled_api: str) -> None:
    base = controlled_api
    refused = [
        {"Origin": "http://evil.example"},
        {"Host": "evil.example:9464"},  # DNS rebinding: a name that resolved to loopback
        {"Sec-Fetch-Site": "cross-site"},
    ]
    for headers in refused:
        code, body = post(f"{base}/ui/vlans/lab/leave", headers)
        assert code == 403, headers
        assert "error" in body and "key" not in json.dumps(body).lower()
    # The node's own page (same origin) gets through to the node, which is not running.
    own = {"Origin": base, "Sec-Fetch-Site": "same-origin"}
    assert post(f"{base}/ui/vlans/lab/leave", own) == (
        503,
        {"error": "the node is not running yet"},
    )
    assert post(f"{base}/ui/vlans/lab/dance")[0] == 404
    view = json.loads(get(base + "/ui/view.json")[1])
    assert view["controls"] == {"join_leave": True}
