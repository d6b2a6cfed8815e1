"""Trace mode: every PeerTap packet this node sends, receives or forwards, as JSON lines.

Each line is one packet as it is after trunk decryption (exactly what a relay
sees): {"ts", "dir" (tx|rx|fwd|flood), "peer", "type" (data|announce|control),
"hop_limit", "vlan_id", "mls_id", "vft", "sender", "counter", "len", "packet" (hex of
all bytes)}. The format is documented in docs/operations.md so anyone can check what
crosses a relay.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO

from . import wire

_TYPE_NAMES = {
    wire.TYPE_DATA: "data",
    wire.TYPE_ANNOUNCE: "announce",
    wire.TYPE_CONTROL: "control",
    wire.TYPE_INTRO: "intro",
}


class Trace:
    def __init__(self, path: str | Path) -> None:
        self._file: IO[str] = open(path, "a", buffering=1)  # noqa: SIM115 - lives with the node

    def record(self, direction: str, peer: str, packet: bytes | memoryview) -> None:
        entry: dict[str, object] = {
            "ts": round(time.time(), 6),
            "dir": direction,
            "peer": peer,
            "len": len(packet),
        }
        try:
            t = wire.packet_type(packet)
            entry["type"] = _TYPE_NAMES[t]
            entry["hop_limit"] = packet[wire.HOP_OFFSET]
            if t == wire.TYPE_DATA:
                h = wire.decode_data(packet)
                entry.update(
                    vlan_id=h.vlan_id.hex(),
                    mls_id=h.mls_id.hex(),
                    vft=h.vft.hex(),
                    sender=h.sender.hex(),
                    counter=h.counter,
                    fragment=bool(h.flags & wire.FLAG_FRAGMENT),
                )
        except wire.MalformedPacket as err:
            entry["type"] = "malformed"
            entry["error"] = err.reason
        entry["packet"] = bytes(packet).hex()
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()
