"""Software segmentation of GSO super-frames (tap/segment.py), as pure functions.

The kernel's own verdict on the frames is in tests/netns/test_segmentation.py; here
every property is checked for any payload and segment size.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from gso_units import gso_unit
from hypothesis import given, settings
from hypothesis import strategies as st

from peertap.sidecar.tap import segment
from peertap.sidecar.tap.segment import SegmentError, checksum, plain_frames


def l4_checksum_ok(frame: bytes, *, l3: int = 14) -> bool:
    version = frame[l3] >> 4
    if version == 4:
        ihl = (frame[l3] & 15) * 4
        src, dst, proto = frame[l3 + 12 : l3 + 16], frame[l3 + 16 : l3 + 20], frame[l3 + 9]
        seg = frame[l3 + ihl :]
        assert checksum(frame[l3 : l3 + ihl]) == 0, "IPv4 header checksum"
        pseudo = src + dst + struct.pack(">xBH", proto, len(seg))
    else:
        src, dst, proto = frame[l3 + 8 : l3 + 24], frame[l3 + 24 : l3 + 40], frame[l3 + 6]
        seg = frame[l3 + 40 :]
        pseudo = src + dst + struct.pack(">I3xB", len(seg), proto)
    return checksum(pseudo + seg) == 0


def test_checksum_matches_rfc1071_examples() -> None:
    # RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert checksum(b"") == 0xFFFF
    assert checksum(b"\xff\xff") == 0x0000
    assert checksum(b"\x01") == 0xFEFF  # odd length: padded with a zero byte


@settings(max_examples=60, deadline=None)
@given(
    payload=st.binary(min_size=1, max_size=20000),
    mss=st.integers(min_value=64, max_value=9000),
    version=st.sampled_from([4, 6]),
    udp=st.booleans(),
    fin=st.booleans(),
    seq=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_segments_rebuild_the_payload_with_valid_headers_and_checksums(
    payload: bytes, mss: int, version: int, udp: bool, fin: bool, seq: int
) -> None:
    flags = 0x18 | (0x01 if fin else 0) | 0x80  # PSH|ACK (+FIN) and CWR
    frames = plain_frames(
        gso_unit(payload, version=version, udp=udp, mss=mss, tcp_flags=flags, seq=seq)
    )
    l3 = 14
    l4 = l3 + (20 if version == 4 else 40)
    hlen = 8 if udp else 20
    assert len(frames) == -(-len(payload) // mss)
    assert b"".join(f[l4 + hlen :] for f in frames) == payload
    for i, f in enumerate(frames):
        assert len(f) - l4 - hlen <= mss
        assert l4_checksum_ok(f)
        if version == 4:
            assert int.from_bytes(f[l3 + 2 : l3 + 4], "big") == len(f) - l3
            assert int.from_bytes(f[l3 + 4 : l3 + 6], "big") == (0x1234 + i) & 0xFFFF
        else:
            assert int.from_bytes(f[l3 + 4 : l3 + 6], "big") == len(f) - l4
        if udp:
            assert int.from_bytes(f[l4 + 4 : l4 + 6], "big") == len(f) - l4
        else:
            assert int.from_bytes(f[l4 + 4 : l4 + 8], "big") == (seq + i * mss) % 2**32
            last, first = i == len(frames) - 1, i == 0
            assert bool(f[l4 + 13] & 0x01) == (fin and last)
            assert bool(f[l4 + 13] & 0x08) == last
            assert bool(f[l4 + 13] & 0x80) == first


def test_a_tun_unit_without_ethernet_header_is_segmented_too() -> None:
    frames = plain_frames(gso_unit(bytes(range(256)) * 20, version=6, l2=False), l2=False)
    assert len(frames) == 4
    assert all(l4_checksum_ok(f, l3=0) for f in frames)


def test_a_partial_checksum_without_gso_is_completed() -> None:
    unit = bytearray(gso_unit(b"x" * 100, version=4, udp=True, mss=1400))
    unit[1] = segment.GSO_NONE
    (frame,) = plain_frames(bytes(unit))
    assert l4_checksum_ok(frame)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda u: u[:5], "short"),
        (lambda u: u[:1] + b"\x03" + u[2:], "gso_type"),  # UFO: IP fragmentation
        (lambda u: u[:4] + b"\x00\x00" + u[6:], "gso_size"),  # gso_size 0
        (lambda u: u[:22] + b"\x08\x06" + u[24:], "ethertype"),
        (lambda u: u[:1] + b"\x04" + u[2:], "ip_header"),  # TCPV6 on an IPv4 packet
        (lambda u: u[:33] + b"\x11" + u[34:], "l4_protocol"),  # UDP protocol, TCP GSO
        (lambda u: u[:30], "short"),
        (lambda u: (u[:56] + b"\xf0" + u[57:])[:90], "l4_header"),  # TCP header past the end
        (lambda u: u[:56] + b"\x10" + u[57:], "l4_header"),  # TCP data offset 4 bytes
    ],
)
def test_malformed_units_are_refused_with_a_reason(mutate: object, reason: str) -> None:
    unit = gso_unit(b"y" * 3000, version=4)
    assert callable(mutate)
    with pytest.raises(SegmentError) as err:
        plain_frames(mutate(unit))
    assert err.value.reason == reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_frames_or_a_segment_error_never_a_crash(data: bytes) -> None:
    for l2 in (True, False):
        with contextlib.suppress(SegmentError):
            plain_frames(data, l2=l2)
