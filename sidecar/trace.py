"""Trace mode: every PeerTap packet this node sends, receives or forwards, to a file.

The file name picks the format:

- `*.pcapng`: pcapng for Wireshark and tshark (`deploy/wireshark/peertap.lua` names
  every header field). One interface per trunk, named by the peer's ID; each packet
  is the PeerTap packet exactly as after trunk decryption, with link type
  LINKTYPE_USER0 (147); the direction is the packet's inbound/outbound flag and its
  comment says tx, rx, fwd or flood.
- anything else: JSON lines, appended. Each line is one packet as it is after trunk
  decryption (exactly what a relay sees): {"ts", "dir" (tx|rx|fwd|flood), "peer",
  "type" (data|announce|control), "hop_limit", "vlan_id", "mls_id", "vft", "sender",
  "counter", "len", "packet" (hex of all bytes)}.

Both formats are documented in docs/operations.md so anyone can check what crosses
a relay.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Protocol

from . import __version__, wire
from .pcapng import PcapngWriter

LINKTYPE_PEERTAP = 147  # LINKTYPE_USER0: the PeerTap packet itself, no outer header
PCAPNG_SUFFIX = ".pcapng"

_TYPE_NAMES = {
    wire.TYPE_DATA: "data",
    wire.TYPE_ANNOUNCE: "announce",
    wire.TYPE_CONTROL: "control",
    wire.TYPE_INTRO: "intro",
}


class _Sink(Protocol):
    def record(self, direction: str, peer: str, packet: bytes | memoryview) -> None: ...

    def close(self) -> None: ...


class JsonLinesTrace:
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


class PcapngTrace:
    def __init__(self, path: str | Path) -> None:
        self._writer = PcapngWriter(
            path, linktype=LINKTYPE_PEERTAP, application=f"peertap {__version__}"
        )

    def record(self, direction: str, peer: str, packet: bytes | memoryview) -> None:
        interface = self._writer.interface(peer, f"PeerTap trunk to {peer}")
        self._writer.packet(interface, bytes(packet), outbound=direction != "rx", comment=direction)

    def close(self) -> None:
        self._writer.close()


class Trace:
    """The node's trace file: pcapng when the name ends in .pcapng, JSON lines otherwise."""

    def __init__(self, path: str | Path) -> None:
        self._sink: _Sink = (
            PcapngTrace(path) if str(path).endswith(PCAPNG_SUFFIX) else JsonLinesTrace(path)
        )

    def record(self, direction: str, peer: str, packet: bytes | memoryview) -> None:
        self._sink.record(direction, peer, packet)

    def close(self) -> None:
        self._sink.close()
