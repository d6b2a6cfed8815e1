"""Sidecar /status endpoints for tests: the sidecar's own API server on loopback addresses."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from operator_harness import wait_for

from peertap.sidecar.api import ApiServer, StatusBoard

API_PORT = 9464


def snapshot(
    peer_id: str,
    *,
    peers: Sequence[str] = (),
    vlans: Sequence[tuple[str, int, str]] = (),
) -> dict[str, Any]:
    """A node snapshot shaped like `Node.status()`; vlans are (vlan_id, epoch, mls_id)."""
    return {
        "ready": True,
        "version": "test",
        "peer_id": peer_id,
        "listen": [f"/ip4/0.0.0.0/tcp/4001/p2p/{peer_id}"],
        "peers": sorted(peers),
        "relay": {"enabled": False, "acl": "restricted"},
        "vlans": [
            {
                "label": "lab",
                "vlan_id": vlan_id,
                "interface": "pt-lab",
                "mac": "02:00:00:00:00:01",
                "security": "mls",
                "epoch": epoch,
                "mls_id": mls_id,
                "tap_mode": "plain",
                "wanted_tokens": 0,
                "learned_macs": 0,
                "groups": [],
                "mls_state": "member",
                "members": 2,
                "committer": False,
            }
            for vlan_id, epoch, mls_id in vlans
        ],
        "routes": {"origins": 0, "tokens": 0},
        "counters": {"events": {}, "drops": {}},
        "trunk": {},
        "time": 0.0,
    }


@contextlib.contextmanager
def serving(ip: str, snap: dict[str, Any]) -> Iterator[StatusBoard]:
    """The sidecar API on ip:9464 publishing `snap`; publish() on the board changes it."""
    board = StatusBoard()
    board.publish(snap)
    server = ApiServer(board, f"{ip}:{API_PORT}")
    server.start()
    try:
        wait_for(f"sidecar API on {ip}:{API_PORT}", lambda: server.started)
        yield board
    finally:
        server.stop()
