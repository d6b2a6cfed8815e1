"""GSO units built the way a Linux TAP with TSO/USO hands them out (for segmentation tests)."""

from __future__ import annotations

import ipaddress
import struct

from peertap.sidecar.tap import segment
from peertap.sidecar.tap.segment import checksum

DST_MAC, SRC_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
SRC4, DST4 = ipaddress.ip_address("10.9.0.2").packed, ipaddress.ip_address("10.9.0.1").packed
SRC6, DST6 = ipaddress.ip_address("fd09::2").packed, ipaddress.ip_address("fd09::1").packed


def gso_unit(
    payload: bytes,
    *,
    version: int,
    udp: bool = False,
    mss: int = 1448,
    tcp_flags: int = 0x18,
    seq: int = 1000,
    l2: bool = True,
) -> bytes:
    """A GSO unit as a Linux TAP with TSO/USO hands it out (partial checksum left in)."""
    proto = 17 if udp else 6
    l4_len = (8 if udp else 20) + len(payload)
    if version == 4:
        ip = struct.pack(
            ">BBHHHBBH4s4s", 0x45, 0, 20 + l4_len, 0x1234, 0x4000, 64, proto, 0, SRC4, DST4
        )
        ip = ip[:10] + struct.pack(">H", checksum(ip)) + ip[12:]
        pseudo = SRC4 + DST4 + struct.pack(">xBH", proto, l4_len)
        ethertype, gso = 0x0800, (segment.GSO_UDP_L4 if udp else segment.GSO_TCPV4)
    else:
        ip = struct.pack(">IHBB16s16s", 0x60000000, l4_len, proto, 64, SRC6, DST6)
        pseudo = SRC6 + DST6 + struct.pack(">I3xB", l4_len, proto)
        ethertype, gso = 0x86DD, (segment.GSO_UDP_L4 if udp else segment.GSO_TCPV6)
    partial = ~checksum(pseudo) & 0xFFFF  # the sender leaves the pseudo-header sum in place
    l4 = (
        struct.pack(">HHHH", 40000, 5201, l4_len, partial)
        if udp
        else struct.pack(">HHIIBBHHH", 40000, 5201, seq, 77, 5 << 4, tcp_flags, 512, partial, 0)
    )
    eth = DST_MAC + SRC_MAC + struct.pack(">H", ethertype) if l2 else b""
    l4_start = len(eth) + len(ip)
    hdr = struct.pack("<BBHHHH", 1, gso, l4_start + len(l4), mss, l4_start, 6 if udp else 16)
    return hdr + eth + ip + l4 + payload
