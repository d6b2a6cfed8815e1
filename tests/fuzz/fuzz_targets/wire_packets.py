"""Packet prefix and headers: `wire.packet_type`, `decode_data`, `decode_announce`,
`decode_control`, `decode_intro` and `decode_probe` on arbitrary bytes.

Asserts that each returns a value or raises MalformedPacket; that what decodes encodes
back to the same bytes (DATA: the header, then the ciphertext untouched; INTRO and
PROBE: with the hop limit of 1 they are always sent with); and that the signature
checks a receiver runs on a decoded ANNOUNCE (`announcements.verify`) or CONTROL
(`private.envelope.verify`) answer True or False, never raise.
"""

from __future__ import annotations

from peertap.sidecar import announcements, wire
from peertap.sidecar.private import envelope

from . import world

NAME = "wire_packets"


def seeds() -> list[bytes]:
    header = wire.DataHeader(
        8, wire.FLAG_FRAGMENT, world.VLAN_ID, bytes(16), b"\x02" * 16, b"s" * 8, world.NOW_US
    )
    a = world.node(1)
    control = envelope.sign(
        a, hop_limit=3, timestamp=world.NOW_US, vlan_id=world.VLAN_ID, kind=1, body=b"body"
    )
    intro = wire.Intro(2, 2, wire.ROLE_RELAY, (world.node_credential(a, "a"), b"x"))
    return [
        header.encode() + bytes(range(40)),
        wire.DataHeader(1, 0, bytes(16), bytes(16), bytes(16), bytes(8), 1).encode() + bytes(16),
        world.announce(a, world.NOW_US, (b"\x05" * 16, b"\x06" * 16)),
        world.announce(a, 1, ()),
        control.encode(),
        wire.Control(1, 0, bytes(16), 6, bytes(32), b"").encode(),
        intro.encode(),
        wire.Intro().encode(),
        wire.Probe(2**64 - 1, 7).encode(),
        wire.Probe(1, 2, reply=True).encode(),
    ]


def check(data: bytes) -> None:
    try:
        ptype = wire.packet_type(data)
    except wire.MalformedPacket:
        ptype = 0
    else:
        assert ptype in (
            wire.TYPE_DATA,
            wire.TYPE_ANNOUNCE,
            wire.TYPE_CONTROL,
            wire.TYPE_INTRO,
            wire.TYPE_PROBE,
        )
    decoded = 0
    try:
        header = wire.decode_data(data)
    except wire.MalformedPacket:
        pass
    else:
        decoded += 1
        assert ptype == wire.TYPE_DATA
        assert header.encode() + data[wire.DATA_HEADER_LEN :] == data
        assert wire.aad_of(data)[wire.HOP_OFFSET] == 0
    try:
        announce = wire.decode_announce(data)
    except wire.MalformedPacket:
        pass
    else:
        decoded += 1
        assert ptype == wire.TYPE_ANNOUNCE
        assert announce.encode() == data
        assert isinstance(announcements.verify(announce), bool)
        assert len(announcements.digest_of(announce)) == 16
    try:
        control = wire.decode_control(data)
    except wire.MalformedPacket:
        pass
    else:
        decoded += 1
        assert ptype == wire.TYPE_CONTROL
        assert control.encode() == data
        assert isinstance(envelope.verify(control), bool)
    try:
        intro = wire.decode_intro(data)
    except wire.MalformedPacket:
        pass
    else:
        decoded += 1
        assert ptype == wire.TYPE_INTRO
        sent = data[: wire.HOP_OFFSET] + b"\x01" + data[wire.HOP_OFFSET + 1 :]
        assert intro.encode() == sent
    try:
        probe = wire.decode_probe(data)
    except wire.MalformedPacket:
        pass
    else:
        decoded += 1
        assert ptype == wire.TYPE_PROBE
        assert probe.encode() == data[: wire.HOP_OFFSET] + b"\x01" + data[wire.HOP_OFFSET + 1 :]
    assert decoded <= 1, "one packet decoded as two types"
