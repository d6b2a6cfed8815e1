"""The optional Grafana dashboard ConfigMap: rendered only when asked, valid JSON, and every
metric it queries is one a real node API or the operator exports."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge

from peertap.operator import metrics
from peertap.sidecar.api import ApiServer, StatusBoard

Render = Callable[..., list[dict[str, Any]]]

SAMPLE = re.compile(r"^([a-z_]+)(?:\{| )", re.MULTILINE)
QUERIED = re.compile(r"\b(peertap_[a-z_]+)\b")

STATUS: dict[str, Any] = {
    "ready": True,
    "peers": ["12D3KooWPeer"],
    "vlans": [
        {
            "label": "lab",
            "vlan_id": "ab" * 16,
            "epoch": 2,
            "members": 2,
            "learned_macs": 1,
            "wanted_tokens": 3,
        }
    ],
    "trunk_peers": {
        "12D3KooWPeer": {
            "bytes_sent": 1,
            "bytes_received": 2,
            "records_sent": 1,
            "records_received": 1,
            "drops": 0,
            "queued_bytes": 0,
        }
    },
    "counters": {"events": {"tx": 1}, "drops": {"auth": 1}},
    "trunk": {"records_sent": 1},
    "routes": {"origins": 1, "tokens": 3},
}


def node_metric_names() -> set[str]:
    board = StatusBoard()
    board.publish(STATUS)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ApiServer(board, f"127.0.0.1:{port}")
    server.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return set(SAMPLE.findall(r.read().decode()))
    finally:
        server.stop()


def operator_metric_names() -> set[str]:
    collectors = [c for c in vars(metrics).values() if isinstance(c, Counter | Gauge)]
    return {
        m.name + ("_total" if m.type == "counter" else "") for c in collectors for m in c.describe()
    }


def dashboard(render: Render, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    (cm,) = [
        m
        for m in render(values)
        if m["kind"] == "ConfigMap" and m["metadata"]["name"].endswith("-dashboards")
    ]
    return cm, json.loads(cm["data"]["peertap.json"])


def test_dashboard_configmap_is_rendered_only_when_enabled(render: Render) -> None:
    assert not [m for m in render() if m["kind"] == "ConfigMap"]
    cm, board = dashboard(render, {"dashboards": {"enabled": True, "namespace": "monitoring"}})
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    assert board["uid"] == "peertap-overview"
    titles = " ".join(p["title"] for p in board["panels"]).lower()
    for topic in ("vlan", "epoch", "trunk", "drops by reason"):
        assert topic in titles


def test_every_queried_metric_is_exported(render: Render) -> None:
    _, board = dashboard(render, {"dashboards": {"enabled": True}})
    queried = {
        name
        for panel in board["panels"]
        for target in panel["targets"]
        for name in QUERIED.findall(target["expr"])
    }
    exported = node_metric_names() | operator_metric_names()
    assert queried - exported == set()
    assert {"peertap_vlan_epoch", "peertap_trunk_peer_sent_bytes_total"} <= queried
