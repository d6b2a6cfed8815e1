"""Sender-side UDP coalescing: a run of small datagrams of one flow as one super-frame.

A burst of UDP datagrams of one flow read from the TAP in one batch (a media stream, a
tunnel, a load generator) costs a syscall per datagram at the receiver's TAP, however
they cross. Joined into one UDP GSO super-frame (gso_type UDP_L4, docs/protocol.md 4.1),
it crosses as one unit and the receiving kernel cuts it back into the same datagrams
(or `segment.py` does, on an interface without offloads): one TAP write for the run.
This is what the kernel builds itself for an application that uses UDP GSO; frames that
are no such datagram pass untouched.

A run is consecutive units that are all plain (no GSO) Ethernet + IPv4 (no options)
or IPv6 (no extension headers) + UDP frames with the same Ethernet header, the same IP
header but for the length, identification and checksum, the same ports, DF set and no
fragment (IPv4), and equal payloads but for the last, which may be shorter. At most
MAX_SEGMENTS and MAX_BYTES go in one super-frame. The receiver's segments get fresh
IPv4 identifications (id + i, as Linux's GSO does): only atomic datagrams (DF, no
fragment) are joined, whose identification carries no meaning (RFC 6864). Checksums
are recomputed per segment; a datagram sent with no UDP checksum gets one.
"""

from __future__ import annotations

import struct

from .segment import (
    ETH_HLEN,
    ETH_IP,
    ETH_IPV6,
    F_NEEDS_CSUM,
    GSO_NONE,
    GSO_UDP_L4,
    IPPROTO_UDP,
    MIN_GSO_SIZE,
    VNET_HDR_LEN,
    checksum,
    pseudo_header,
)

MAX_SEGMENTS = 64
MAX_BYTES = 32768
"""A super-frame stays well inside one DATA packet (and a receiver's GSO limits)."""
MIN_PAYLOAD = MIN_GSO_SIZE
"""Receivers refuse smaller segments (segment.py): such datagrams go as they are."""
IPV4_HLEN, IPV6_HLEN, UDP_HLEN = 20, 40, 8
_VNET = struct.Struct("<BBHHHH")
_ETHERTYPE = struct.Struct(">H")
_U16 = struct.Struct(">H")
_IPV4_DF = 0x4000
_IPV4_FRAG = 0x3FFF  # MF and the fragment offset
L3 = VNET_HDR_LEN + ETH_HLEN
"""Where the IP header starts in a unit (only plain Ethernet frames are joined)."""


def _flow(unit: bytes) -> tuple[bytes, int, int] | None:
    """(the bytes every datagram of the run shares, L4 offset, UDP payload size), or None
    for a unit that is no atomic UDP datagram without options."""
    if len(unit) < L3 + IPV4_HLEN + UDP_HLEN or unit[1] != GSO_NONE:
        return None
    (ethertype,) = _ETHERTYPE.unpack_from(unit, L3 - 2)
    if ethertype == ETH_IP:
        if unit[L3] != 0x45 or unit[L3 + 9] != IPPROTO_UDP:
            return None
        (total,) = _U16.unpack_from(unit, L3 + 2)
        (frag,) = _U16.unpack_from(unit, L3 + 6)
        if frag & _IPV4_FRAG or not frag & _IPV4_DF or L3 + total != len(unit):
            return None
        l4 = L3 + IPV4_HLEN
        # Shared: Ethernet header, version/IHL/TOS, flags, TTL, protocol, addresses, ports.
        key = unit[VNET_HDR_LEN : L3 + 2] + unit[L3 + 6 : L3 + 10] + unit[L3 + 12 : l4 + 4]
    elif ethertype == ETH_IPV6:
        if len(unit) < L3 + IPV6_HLEN + UDP_HLEN or unit[L3] >> 4 != 6:
            return None
        if unit[L3 + 6] != IPPROTO_UDP:
            return None
        (payload_len,) = _U16.unpack_from(unit, L3 + 4)
        if L3 + IPV6_HLEN + payload_len != len(unit):
            return None
        l4 = L3 + IPV6_HLEN
        key = unit[VNET_HDR_LEN : L3 + 4] + unit[L3 + 6 : l4 + 4]
    else:
        return None
    (udp_len,) = _U16.unpack_from(unit, l4 + 4)
    if udp_len != len(unit) - l4 or udp_len < UDP_HLEN + MIN_PAYLOAD:
        return None
    return key, l4, udp_len - UDP_HLEN


def coalesce(units: list[bytes]) -> tuple[list[bytes], int]:
    """`units` with each run of two or more joinable datagrams replaced by one UDP GSO
    super-frame, in order; (the units, datagrams that went into super-frames)."""
    out: list[bytes] = []
    joined = 0
    run: list[bytes] = []
    run_key = b""
    run_l4 = run_size = last_size = run_bytes = 0
    for unit in units:
        flow = _flow(unit)
        if flow is not None:
            key, l4, size = flow
            if (
                run
                and key == run_key
                and last_size == run_size  # only the last datagram may be shorter
                and size <= run_size
                and len(run) < MAX_SEGMENTS
                and run_bytes + size <= MAX_BYTES
            ):
                run.append(unit)
                run_bytes += size
                last_size = size
                continue
        if run:
            joined += _flush(run, run_l4, run_size, out)
            run = []
        if flow is None:
            out.append(unit)
            continue
        run, run_key, run_l4 = [unit], key, l4
        run_size = last_size = run_bytes = size
    if run:
        joined += _flush(run, run_l4, run_size, out)
    return out, joined


def _flush(run: list[bytes], l4: int, size: int, out: list[bytes]) -> int:
    if len(run) == 1:
        out.append(run[0])
        return 0
    out.append(_super_frame(run, l4, size))
    return len(run)


def _super_frame(run: list[bytes], l4: int, size: int) -> bytes:
    first = run[0]
    payload = b"".join([u[l4 + UDP_HLEN :] for u in run])
    udp_len = UDP_HLEN + len(payload)
    ip = bytearray(first[L3:l4])
    if l4 - L3 == IPV4_HLEN:
        ip[2:4] = _U16.pack(IPV4_HLEN + udp_len)
        ip[10:12] = b"\x00\x00"
        ip[10:12] = _U16.pack(checksum(ip))
        addresses = bytes(ip[12:20])
    else:
        ip[4:6] = _U16.pack(udp_len)
        addresses = bytes(ip[8:40])
    # The UDP checksum field holds the pseudo-header sum, folded and not inverted (a
    # partial checksum, NEEDS_CSUM): what GSO completes for each segment.
    partial = ~checksum(pseudo_header(addresses, IPPROTO_UDP, udp_len)) & 0xFFFF
    udp = first[l4 : l4 + 4] + _U16.pack(udp_len) + _U16.pack(partial)
    csum_start = l4 - VNET_HDR_LEN
    vnet = _VNET.pack(F_NEEDS_CSUM, GSO_UDP_L4, csum_start + UDP_HLEN, size, csum_start, 6)
    return vnet + first[VNET_HDR_LEN:L3] + bytes(ip) + udp + payload
