"""A minimal pcapng writer: one section, interfaces added as they appear, Enhanced Packet Blocks.

Only what trace mode needs (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html):
a Section Header Block, one Interface Description Block per interface (name and
description options, microsecond timestamps), and one Enhanced Packet Block per
packet with its direction flag and an optional comment. Little-endian. Each block
goes to the file in one write, so a reader of a live file sees whole blocks.
Appending to an existing file starts a new section, which readers accept.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import IO

SHB = 0x0A0D0D0A
IDB = 0x00000001
EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_END = 0
OPT_COMMENT = 1
OPT_IF_NAME = 2
OPT_IF_DESCRIPTION = 3
OPT_SHB_USERAPPL = 4
OPT_EPB_FLAGS = 2

INBOUND = 1
OUTBOUND = 2
SNAPLEN = 0  # no limit


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _options(options: list[tuple[int, bytes]]) -> bytes:
    if not options:
        return b""
    out = b"".join(struct.pack("<HH", code, len(v)) + _pad(v) for code, v in options)
    return out + struct.pack("<HH", OPT_END, 0)


def block(kind: int, body: bytes) -> bytes:
    """A whole block: type, total length, body (padded), total length again."""
    body = _pad(body)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


class PcapngWriter:
    """Writes packets of one link type; `packet()` adds an interface the first time it is named."""

    def __init__(self, path: str | Path, *, linktype: int, application: str) -> None:
        self._file: IO[bytes] = open(path, "ab", buffering=0)  # noqa: SIM115 - lives with the node
        self._linktype = linktype
        self._interfaces: dict[str, int] = {}
        shb = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
        shb += _options([(OPT_SHB_USERAPPL, application.encode())])
        self._file.write(block(SHB, shb))

    def interface(self, name: str, description: str) -> int:
        """The interface ID for `name`, writing its Interface Description Block if new."""
        found = self._interfaces.get(name)
        if found is not None:
            return found
        body = struct.pack("<HHI", self._linktype, 0, SNAPLEN)
        body += _options([(OPT_IF_NAME, name.encode()), (OPT_IF_DESCRIPTION, description.encode())])
        self._file.write(block(IDB, body))
        self._interfaces[name] = len(self._interfaces)
        return self._interfaces[name]

    def packet(
        self,
        interface: int,
        data: bytes,
        *,
        outbound: bool,
        comment: str | None = None,
        ts: float | None = None,
    ) -> None:
        micros = int((time.time() if ts is None else ts) * 1_000_000)
        body = struct.pack(
            "<IIIII", interface, micros >> 32, micros & 0xFFFFFFFF, len(data), len(data)
        )
        options = [(OPT_EPB_FLAGS, struct.pack("<I", OUTBOUND if outbound else INBOUND))]
        if comment:
            options.append((OPT_COMMENT, comment.encode()))
        self._file.write(block(EPB, _pad(body + data) + _options(options)))

    def close(self) -> None:
        self._file.close()
