"""Signed announcements: `announcements.AnnounceIntake.take` fed sequences of ANNOUNCE
packets, with a real route table.

Input: packets, each a u16 length then that many bytes, handed in turn to one intake
(so copies, replays and older sequences meet what came before), from three
neighbours in turn: the two origins themselves and a relay. Seeds are announcements
signed by the two origins. Asserts that `take` returns None or what it learned, or
raises MalformedPacket; that everything it learns carries a valid signature of its
origin, and at distance 0 came from the origin itself; and that the route table
only ever holds the signers' origins and VLAN.
"""

from __future__ import annotations

import struct

from peertap.sidecar import announcements, wire
from peertap.sidecar.counters import Counters
from peertap.sidecar.switch.routes import RouteTable

from . import world

NAME = "announce_signed"
_LEN = struct.Struct(">H")
_DISTANCE = 60  # offset of the distance byte in an ANNOUNCE
_LIMITS = announcements.IntakeLimits(
    max_age_s=35.0, skew_s=60.0, per_trunk_per_s=1e9, per_origin_per_s=1e9
)
_ORIGINS = {world.node(1).public_bytes, world.node(2).public_bytes}
# The neighbours packets arrive from, in turn: origin a itself, origin b, a relay.
_PEERS = (world.node(1).public_bytes, world.node(2).public_bytes, world.node(5).public_bytes)


def packets(*items: bytes) -> bytes:
    return b"".join(_LEN.pack(len(p)) + p for p in items)


def _split(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos + 2 <= len(data):
        (n,) = _LEN.unpack_from(data, pos)
        out.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out


def seeds() -> list[bytes]:
    a, b = world.node(1), world.node(2)
    t = world.NOW_US
    first = world.announce(a, t - 10, (b"\x01" * 16, b"\x02" * 16))
    second = world.announce(a, t - 5, (b"\x01" * 16,))
    other = world.announce(b, t, (b"\x03" * 16,))
    return [
        packets(first),
        packets(first, _via(first, 1), _via(second, 2), first),
        packets(_via(other, 1), other, _via(world.announce(b, t + 1, ()), 3)),
        packets(world.announce(a, t - 40 * 1_000_000, (b"\x04" * 16,)), other),
    ]


def _via(packet: bytes, distance: int) -> bytes:
    """The announcement as a relay passes it on: the distance is not signed."""
    out = bytearray(wire.with_hop_limit(packet, 3))
    out[_DISTANCE] = distance
    return bytes(out)


def check(data: bytes) -> None:
    routes = RouteTable(ttl_s=35.0, clock=lambda: 0.0)
    intake = announcements.AnnounceIntake(
        routes=routes,
        own_key=world.node(9).public_bytes,
        limits=_LIMITS,
        counters=Counters(),
        wall_us=lambda: world.NOW_US,
    )
    for i, packet in enumerate(_split(data)):
        peer_key = _PEERS[i % len(_PEERS)]
        try:
            taken = intake.take(
                peer_key.hex()[:8], packet, peer_key=peer_key, accept_vlan=lambda vid: True
            )
        except wire.MalformedPacket:
            continue
        if taken is not None:
            ann, _ = taken
            assert announcements.verify(ann), "learned an announcement its origin did not sign"
            assert ann.distance > 0 or ann.origin == peer_key, "a neighbour posed as the origin"
    for origin, vlan_id, *_ in routes.origins():
        assert origin in _ORIGINS and vlan_id == world.VLAN_ID
