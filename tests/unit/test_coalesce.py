"""Sender-side UDP coalescing: runs of one flow's datagrams become one GSO super-frame
that software segmentation (as a receiver without offloads does it) turns back into the
same datagrams; everything else passes untouched and in order."""

from __future__ import annotations

import os
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from peertap.sidecar.tap import coalesce as co
from peertap.sidecar.tap import segment

MAC_A, MAC_B = b"\x02" * 6, b"\x04" * 6
V4_A, V4_B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
V6_A, V6_B = bytes(15) + b"\x01", bytes(15) + b"\x02"


def with_checksum(udp: bytes, pseudo: bytes) -> bytes:
    return udp[:6] + struct.pack(">H", segment.checksum(pseudo + udp) or 0xFFFF) + udp[8:]


def udp4(
    payload: bytes,
    *,
    ident: int = 7,
    sport: int = 5001,
    df: bool = True,
    frag: int = 0,
    ihl: int = 5,
) -> bytes:
    udp = struct.pack(">HHHH", sport, 6001, 8 + len(payload), 0) + payload
    options = bytes(4 * (ihl - 5))
    flags = (0x4000 if df else 0) | frag
    ip = bytearray(
        struct.pack(
            ">BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(udp), ident, flags, 64, 17, 0, V4_A, V4_B
        )
        + options
    )
    ip[10:12] = struct.pack(">H", segment.checksum(ip))
    udp = with_checksum(udp, V4_A + V4_B + bytes((0, 17)) + struct.pack(">H", len(udp)))
    return bytes(10) + MAC_B + MAC_A + b"\x08\x00" + bytes(ip) + udp


def udp6(payload: bytes, *, sport: int = 5001) -> bytes:
    udp = struct.pack(">HHHH", sport, 6001, 8 + len(payload), 0) + payload
    ip = struct.pack(">IHBB16s16s", 6 << 28, len(udp), 17, 64, V6_A, V6_B)
    udp = with_checksum(udp, V6_A + V6_B + struct.pack(">I", len(udp)) + bytes((0, 0, 0, 17)))
    return bytes(10) + MAC_B + MAC_A + b"\x86\xdd" + ip + udp


def l4_of(frame: bytes) -> tuple[bytes, bytes]:
    """(the UDP payload and ports, the addresses) of a plain frame, with its checksums
    checked."""
    if frame[12:14] == b"\x08\x00":
        ip, udp = frame[14:34], frame[34:]
        assert segment.checksum(ip) == 0
        pseudo = ip[12:20] + bytes((0, 17)) + struct.pack(">H", len(udp))
        addresses = ip[12:20]
    else:
        ip, udp = frame[14:54], frame[54:]
        pseudo = ip[8:40] + struct.pack(">I", len(udp)) + bytes((0, 0, 0, 17))
        addresses = ip[8:40]
    assert struct.unpack(">H", udp[4:6])[0] == len(udp)
    assert segment.checksum(pseudo + udp) == 0
    return udp[:4] + udp[8:], addresses


def cross(units: list[bytes]) -> list[bytes]:
    """What a receiver without offloads writes for `units`, after coalescing."""
    out, _ = co.coalesce(units)
    return [f for u in out for f in segment.plain_frames(u)]


def test_a_burst_of_one_flow_becomes_one_super_frame_and_segments_back() -> None:
    for make in (udp4, udp6):
        units = [make(os.urandom(64)) for _ in range(20)] + [make(b"the last one")]
        out, joined = co.coalesce(units)
        assert len(out) == 1 and joined == 21
        flags, gso_type, hdr_len, gso_size, start, offset = struct.unpack_from("<BBHHHH", out[0])
        assert (flags, gso_type, gso_size, offset) == (1, 5, 64, 6)
        assert hdr_len == start + 8
        frames = cross(units)
        assert [l4_of(f) for f in frames] == [l4_of(u[10:]) for u in units]


def test_frames_that_are_no_joinable_datagram_pass_untouched_in_order() -> None:
    units = [
        udp4(b"a" * 40),
        udp4(b"b" * 40, sport=5002),  # another flow
        udp4(b"c" * 40, df=False),  # may be fragmented on the way: identification matters
        udp4(b"d" * 40, frag=0x2000),  # a fragment
        udp4(b"e" * 40, ihl=6),  # IP options
        bytes(10) + MAC_B + MAC_A + b"\x08\x06" + bytes(28),  # ARP
        udp4(b"f" * 40)[:-1],  # lengths that do not add up
    ]
    out, joined = co.coalesce(units)
    assert out == units and joined == 0


def test_a_shorter_datagram_ends_a_run_and_a_run_is_bounded() -> None:
    units = [udp4(b"x" * 100), udp4(b"y" * 50), udp4(b"z" * 100), udp4(b"w" * 100)]
    out, joined = co.coalesce(units)
    assert len(out) == 2 and joined == 4
    many = [udp4(os.urandom(16)) for _ in range(co.MAX_SEGMENTS + 3)]
    out, _ = co.coalesce(many)
    assert len(out) == 2
    assert [l4_of(f) for f in cross(many)] == [l4_of(u[10:]) for u in many]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["v4", "v6", "v4-other-port", "arp"]),
            st.integers(min_value=1, max_value=300),
        ),
        max_size=40,
    )
)
def test_any_mix_crosses_as_the_same_datagrams_in_the_same_order(
    spec: list[tuple[str, int]],
) -> None:
    units = []
    for kind, size in spec:
        payload = os.urandom(size)
        if kind == "arp":
            units.append(bytes(10) + MAC_B + MAC_A + b"\x08\x06" + payload)
        elif kind == "v6":
            units.append(udp6(payload))
        else:
            units.append(udp4(payload, sport=5001 if kind == "v4" else 5002))
    frames = cross(units)
    assert len(frames) == len(units)
    for frame, unit in zip(frames, units, strict=True):
        if unit[22:24] == b"\x08\x06":
            assert frame == unit[10:]
        else:
            assert l4_of(frame) == l4_of(unit[10:])
