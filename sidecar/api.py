"""The node's local HTTP API: /healthz, /readyz, /status (JSON), /metrics (Prometheus), /ui/.

/ui/ is the web page (`peertap.sidecar.ui`) drawn from the same snapshot. With
`api.vlan_control` it may also join and leave VLANs (POST /ui/vlans/{label}/join|leave):
those requests are the only ones that reach the node, through `vlan_control.ThreadBridge`
(run on the trio loop, never on this thread).

The data plane runs on trio; this server runs uvicorn (asyncio) in its own
thread and only reads the latest snapshot the node publishes about once a
second, so a slow scrape never touches the packet path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .ui.routes import ui_routes

log = logging.getLogger("peertap.api")


class StatusBoard:
    """Latest node snapshot; replaced whole, so readers never see a half-written one."""

    def __init__(self) -> None:
        self.snapshot: dict[str, Any] = {"ready": False}

    def publish(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot


class _SnapshotCollector(Collector):
    def __init__(self, board: StatusBoard) -> None:
        self.board = board

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        snap = self.board.snapshot
        counters = snap.get("counters", {})
        events = CounterMetricFamily("peertap_events", "Data plane events", labels=["event"])
        for name, value in sorted(counters.get("events", {}).items()):
            events.add_metric([name], value)
        yield events
        drops = CounterMetricFamily(
            "peertap_drops", "Packets dropped, by reason", labels=["reason"]
        )
        for name, value in sorted(counters.get("drops", {}).items()):
            drops.add_metric([name], value)
        yield drops
        trunk = CounterMetricFamily("peertap_trunk", "Trunk counters", labels=["counter"])
        for name, value in sorted(snap.get("trunk", {}).items()):
            trunk.add_metric([name], value)
        yield trunk
        peers = GaugeMetricFamily("peertap_peers", "Peers with a ready trunk")
        peers.add_metric([], len(snap.get("peers", [])))
        yield peers
        routes = GaugeMetricFamily("peertap_routes", "VFT routing table sizes", labels=["table"])
        for name, value in sorted(snap.get("routes", {}).items()):
            routes.add_metric([name], value)
        yield routes
        ready = GaugeMetricFamily("peertap_ready", "1 when the node is ready")
        ready.add_metric([], 1 if snap.get("ready") else 0)
        yield ready
        yield from _vlan_metrics(snap)
        yield from _trunk_peer_metrics(snap)
        yield from _path_metrics(snap)


_VLAN_GAUGES = (
    ("epoch", "peertap_vlan_epoch", "Key epoch of the VLAN (MLS epoch; 0 for open VLANs)"),
    ("members", "peertap_vlan_members", "Members of the VLAN's MLS group (private VLANs)"),
    ("learned_macs", "peertap_vlan_learned_macs", "Source MACs learned on the VLAN's TAP"),
    ("wanted_tokens", "peertap_vlan_wanted_tokens", "Tokens the node announces for the VLAN"),
)
_TRUNK_COUNTERS = (
    ("bytes_sent", "peertap_trunk_peer_sent_bytes", "Bytes sent on the trunk to a peer"),
    ("bytes_received", "peertap_trunk_peer_received_bytes", "Bytes received from a peer"),
    ("records_sent", "peertap_trunk_peer_sent_records", "Records sent to a peer"),
    ("records_received", "peertap_trunk_peer_received_records", "Records received"),
    ("drops", "peertap_trunk_peer_drops", "Records dropped on the trunk to a peer"),
)


def _vlan_metrics(snap: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
    vlans = [v for v in snap.get("vlans", []) if isinstance(v, dict)]
    for key, name, doc in _VLAN_GAUGES:
        family = GaugeMetricFamily(name, doc, labels=["vlan", "vlan_id"])
        for v in vlans:
            value = v.get(key)
            if isinstance(value, int):
                family.add_metric([str(v.get("label")), str(v.get("vlan_id"))], value)
        yield family


def _trunk_peer_metrics(
    snap: dict[str, Any],
) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    peers = snap.get("trunk_peers")
    peers = peers if isinstance(peers, dict) else {}
    for key, name, doc in _TRUNK_COUNTERS:
        counter = CounterMetricFamily(name, doc, labels=["peer"])
        for peer, values in sorted(peers.items()):
            if isinstance(values, dict) and isinstance(values.get(key), int):
                counter.add_metric([str(peer)], values[key])
        yield counter
    queued = GaugeMetricFamily(
        "peertap_trunk_peer_queued_bytes", "Bytes queued for a peer", labels=["peer"]
    )
    for peer, values in sorted(peers.items()):
        if isinstance(values, dict) and isinstance(values.get("queued_bytes"), int):
            queued.add_metric([str(peer)], values["queued_bytes"])
    yield queued


_PATH_GAUGES = (
    ("datagram_up", "peertap_path_datagram_up", "1 while DATA to the peer goes in datagrams", 1),
    ("rtt_ms", "peertap_path_rtt_seconds", "Smoothed RTT of the datagram path", 1e-3),
    ("loss", "peertap_path_loss_ratio", "Share of lost probe rounds on the datagram path", 1),
    ("datagram_size", "peertap_path_datagram_bytes", "Probed datagram size (path MTU)", 1),
    ("send_bytes_per_s", "peertap_path_send_bytes_per_second", "Datagram bytes sent per s", 1),
)


def _path_metrics(snap: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
    """Per trunk peer, what its datagram path measured (docs/protocol.md, 8b)."""
    paths = snap.get("transports")
    paths = paths if isinstance(paths, dict) else {}
    for key, name, doc, scale in _PATH_GAUGES:
        family = GaugeMetricFamily(name, doc, labels=["peer"])
        for peer, values in sorted(paths.items()):
            value = values.get(key) if isinstance(values, dict) else None
            if isinstance(value, bool | int | float):
                family.add_metric([str(peer)], float(value) * scale)
        yield family


VlanControl = Callable[[str, str], dict[str, Any]]


def make_app(board: StatusBoard, control: VlanControl | None = None) -> Starlette:
    registry = CollectorRegistry()
    registry.register(_SnapshotCollector(board))

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        ready = bool(board.snapshot.get("ready"))
        return PlainTextResponse("ready\n" if ready else "not ready\n", 200 if ready else 503)

    async def status(request: Request) -> Response:
        return JSONResponse(board.snapshot)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/status", status),
            Route("/metrics", metrics),
            *ui_routes(lambda: board.snapshot, control),
        ]
    )


class ApiServer:
    """uvicorn in a daemon thread; `stop()` asks it to exit and waits briefly."""

    def __init__(
        self, board: StatusBoard, listen: str, *, control: VlanControl | None = None
    ) -> None:
        host, _, port = listen.rpartition(":")
        config = uvicorn.Config(
            make_app(board, control),
            host=host.strip("[]"),
            port=int(port),
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="peertap-api", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("api listening on %s:%d", self._server.config.host, self._server.config.port)

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def stop(self) -> None:
        self._server.should_exit = True
        # A node that failed before its API started (e.g. no TAP) stops without one.
        if self._thread.ident is not None:
            self._thread.join(timeout=5)
