"""DATA decryption: `crypto.frames.FrameOpener.open` on arbitrary DATA packets.

The opener holds the real key of a public VLAN; the seeds are packets sealed under it.
Input: a DATA packet (anything `wire.decode_data` refuses is skipped). Asserts that
`open` returns a plaintext or raises OpenError, and that it opens only what the
sealer made: a packet that opens equals a seed in every byte but the hop limit, and
its plaintext is that seed's.
"""

from __future__ import annotations

import functools

from peertap.sidecar import wire
from peertap.sidecar.crypto.frames import FrameOpener, FrameSealer, OpenError
from peertap.sidecar.crypto.keys import PublicKeyProvider

from . import world

NAME = "frame_open"
_KEYS = PublicKeyProvider(world.AUTHORITY.public_bytes, "fuzz")


def _without_hop(packet: bytes) -> bytes:
    return packet[: wire.HOP_OFFSET] + packet[wire.HOP_OFFSET + 1 :]


@functools.cache
def _sealed() -> dict[bytes, bytes]:
    sealer = FrameSealer(world.VLAN_ID, _KEYS)
    plaintexts = [bytes(10) + b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(28), b"", b"x" * 300]
    out = {}
    for i, plaintext in enumerate(plaintexts):
        packet = sealer.seal(
            vft=bytes([i]) * 16, plaintext=plaintext, hop_limit=8, flags=i & wire.FLAG_FRAGMENT
        )
        out[_without_hop(packet)] = plaintext
    return out


def seeds() -> list[bytes]:
    return [k[: wire.HOP_OFFSET] + b"\x08" + k[wire.HOP_OFFSET :] for k in _sealed()]


def check(data: bytes) -> None:
    try:
        header = wire.decode_data(data)
    except wire.MalformedPacket:
        return
    opener = FrameOpener(_KEYS)
    try:
        plaintext = opener.open(data, header)
    except OpenError:
        return
    sealed = _sealed()
    key = _without_hop(data)
    assert key in sealed, "a packet the sealer never made was opened"
    assert plaintext == sealed[key]
    try:
        opener.open(data, header)
    except OpenError as err:
        assert err.reason == "replay"
    else:
        raise AssertionError("the same packet opened twice")
