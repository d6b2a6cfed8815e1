"""Stand-in for `peertap run` in lab tests: the daemon's outer contract, no data plane.

Reads `--config`, creates each VLAN's TAP with its address, listens on the
trunk port, serves /readyz and /status on api.listen, and on SIGTERM closes
everything (which removes its TAPs) and exits 0. Used through
PEERTAP_LAB_NODE_CMD so lab tests do not depend on the real daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytun
from peertap.sidecar.config import load


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--config", required=True)
    parser.add_argument("--trace")
    args = parser.parse_args()
    config, base = load(args.config)
    taps = []
    for vlan in config.vlans:
        tap = pytun.TunTapDevice(name=vlan.interface.name, flags=pytun.IFF_TAP | pytun.IFF_NO_PI)
        if vlan.interface.address:
            subprocess.run(
                ["ip", "addr", "add", vlan.interface.address, "dev", tap.name], check=True
            )
        tap.up()
        taps.append(tap)
    trunk = socket.create_server(("0.0.0.0", 4001))
    if args.trace:
        Path(args.trace).write_bytes(b"")
    status: dict[str, Any] = {
        "stand_in": True,
        "pid": os.getpid(),
        "key_file": str(base / config.identity.key_file),
        "relay": config.relay.enabled,
        "interfaces": [t.name for t in taps],
        "bootstrap": config.bootstrap,
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/readyz":
                self._answer(200, b"ok\n", "text/plain")
            elif self.path == "/status":
                self._answer(200, json.dumps(status).encode(), "application/json")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, code: int, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    host, _, port = config.api.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait()
    server.shutdown()
    server.server_close()
    trunk.close()
    for tap in taps:
        tap.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
