"""Packet prefix and headers: `wire.packet_type`, `decode_data`, `decode_announce`,
`decode_control` on arbitrary bytes.

Asserts that each returns a value or raises MalformedPacket, and that what decodes
encodes back to the same bytes (DATA: the header, then the ciphertext untouched).
"""

from __future__ import annotations

import os

from peertap.sidecar import wire

from . import world

NAME = "wire_packets"


def seeds() -> list[bytes]:
    header = wire.DataHeader(
        8, wire.FLAG_FRAGMENT, world.VLAN_ID, bytes(16), b"\x02" * 16, b"s" * 8, 7
    )
    announce = wire.Announce(
        4, b"o" * 16, 9, 1, ((world.VLAN_ID, b"\x05" * 16), (world.VLAN_ID, b"\x06" * 16))
    )
    control = wire.Control(3, b"c" * 16, 5, world.VLAN_ID, 1, b"k" * 32, b"body", b"\x09" * 64)
    return [
        header.encode() + os.urandom(40),
        wire.DataHeader(1, 0, bytes(16), bytes(16), bytes(16), bytes(8), 1).encode() + bytes(16),
        announce.encode(),
        wire.Announce(1, bytes(16), 0, 0, ()).encode(),
        control.encode(),
        wire.Control(1, bytes(16), 0, bytes(16), 6, bytes(32), b"").encode(),
    ]


def check(data: bytes) -> None:
    try:
        ptype = wire.packet_type(data)
    except wire.MalformedPacket:
        ptype = 0
    else:
        assert ptype in (wire.TYPE_DATA, wire.TYPE_ANNOUNCE, wire.TYPE_CONTROL)
    try:
        header = wire.decode_data(data)
    except wire.MalformedPacket:
        pass
    else:
        assert ptype == wire.TYPE_DATA
        assert header.encode() + data[wire.DATA_HEADER_LEN :] == data
        assert wire.aad_of(data)[wire.HOP_OFFSET] == 0
    try:
        announce = wire.decode_announce(data)
    except wire.MalformedPacket:
        pass
    else:
        assert ptype == wire.TYPE_ANNOUNCE
        assert announce.encode() == data
    try:
        control = wire.decode_control(data)
    except wire.MalformedPacket:
        pass
    else:
        assert ptype == wire.TYPE_CONTROL
        assert control.encode() == data
        assert control.signed_part().startswith(wire.CONTROL_CONTEXT)
