"""Software segmentation: GSO super-frames for an interface that cannot take them.

A sender's TAP with TSO hands us TCP super-frames of up to 64 KiB (and a peer may
send UDP ones, GSO type UDP_L4); a receiver whose TAP (or TUN) has no offloads
must write MTU-sized frames instead. This module does what the kernel's GSO would:

  virtio_net_hdr + super-frame -> locate L3/L4 (Ethernet, 802.1Q, or bare IP for a
  TUN) -> cut the payload into gso_size pieces -> per piece: IPv4 total length, id
  and header checksum, or IPv6 payload length; TCP sequence number and flags (FIN
  and PSH on the last piece only, CWR on the first only), or UDP length -> full
  L4 checksum over the pseudo-header -> one plain frame per piece

A unit without GSO but with a partial checksum (NEEDS_CSUM) gets its checksum
completed. Anything malformed raises SegmentError with a short reason that the
caller counts; nothing here trusts a length it did not check.
"""

from __future__ import annotations

import struct

VNET_HDR_LEN = 10
F_NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_UDP_L4 = 0, 1, 3, 4, 5
GSO_ECN = 0x80
ETH_HLEN = 14
ETH_IP, ETH_IPV6, ETH_VLAN = 0x0800, 0x86DD, 0x8100
IPPROTO_TCP, IPPROTO_UDP = 6, 17
TCP_FIN, TCP_PSH, TCP_CWR = 0x01, 0x08, 0x80
MIN_GSO_SIZE = 8  # smaller pieces are a hostile unit, not a real MSS
MAX_SEGMENTS = 8192

_HDR = struct.Struct("<BBHHHH")


class SegmentError(ValueError):
    """A unit that cannot be turned into plain frames; `reason` is a counter label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def checksum(data: bytes | bytearray | memoryview) -> int:
    """RFC 1071 Internet checksum (one's complement of the one's-complement sum).

    The one's-complement sum of 16-bit words is the value of the data read as one
    big-endian integer modulo 0xFFFF (2**16 = 1 mod 0xFFFF), which CPython computes in
    C: about 50 times faster than summing words in Python.
    """
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = int.from_bytes(data, "big") % 0xFFFF
    if total == 0 and any(data):
        total = 0xFFFF
    return ~total & 0xFFFF


def pseudo_header(addresses: bytes, proto: int, length: int) -> bytes:
    """The pseudo-header an L4 checksum covers: source and destination (8 bytes for IPv4,
    32 for IPv6), then protocol and L4 length as each version lays them out."""
    if len(addresses) == 8:
        return addresses + struct.pack(">xBH", proto, length)
    return addresses + struct.pack(">I3xB", length, proto)


def plain_frames(unit: bytes, *, l2: bool = True) -> list[bytes]:
    """The plain frames (no virtio_net_hdr) for one unit; `l2` False for a TUN's IP packets."""
    if len(unit) < VNET_HDR_LEN:
        raise SegmentError("short")
    flags, gso_type, _hdr_len, gso_size, csum_start, csum_offset = _HDR.unpack_from(unit)
    frame = unit[VNET_HDR_LEN:]
    base = gso_type & ~GSO_ECN
    if base == GSO_NONE:
        if flags & F_NEEDS_CSUM:
            return [_complete_checksum(frame, csum_start, csum_offset)]
        return [frame]
    if base not in (GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4):
        raise SegmentError("gso_type")
    if gso_size < MIN_GSO_SIZE:
        raise SegmentError("gso_size")
    return _segment(frame, base, gso_size, l2=l2)


def _complete_checksum(frame: bytes, start: int, offset: int) -> bytes:
    """Fold the bytes from `start` into the partial sum the sender left at start+offset."""
    pos = start + offset
    if start >= len(frame) or pos + 2 > len(frame):
        raise SegmentError("csum_offset")
    buf = bytearray(frame)
    buf[pos : pos + 2] = struct.pack(">H", checksum(memoryview(buf)[start:]))
    return bytes(buf)


def _l3_offset(frame: bytes, l2: bool) -> tuple[int, int]:
    """(offset of the IP header, IP version)."""
    if not l2:
        if not frame:
            raise SegmentError("short")
        return 0, frame[0] >> 4
    if len(frame) < ETH_HLEN:
        raise SegmentError("short")
    l3, ethertype = ETH_HLEN, int.from_bytes(frame[12:14], "big")
    if ethertype == ETH_VLAN:
        if len(frame) < ETH_HLEN + 4:
            raise SegmentError("short")
        l3, ethertype = ETH_HLEN + 4, int.from_bytes(frame[16:18], "big")
    if ethertype == ETH_IP:
        return l3, 4
    if ethertype == ETH_IPV6:
        return l3, 6
    raise SegmentError("ethertype")


def _segment(frame: bytes, gso: int, mss: int, *, l2: bool) -> list[bytes]:
    l3, version = _l3_offset(frame, l2)
    if version == 4:
        if len(frame) < l3 + 20:
            raise SegmentError("short")
        ihl = (frame[l3] & 0x0F) * 4
        proto, l4 = frame[l3 + 9], l3 + ihl
        if ihl < 20 or gso == GSO_TCPV6:
            raise SegmentError("ip_header")
        src, dst = frame[l3 + 12 : l3 + 16], frame[l3 + 16 : l3 + 20]
    elif version == 6:
        if len(frame) < l3 + 40:
            raise SegmentError("short")
        # Extension headers are not walked: GSO units from Linux carry none.
        proto, l4 = frame[l3 + 6], l3 + 40
        if gso == GSO_TCPV4:
            raise SegmentError("ip_header")
        src, dst = frame[l3 + 8 : l3 + 24], frame[l3 + 24 : l3 + 40]
    else:
        raise SegmentError("ip_version")
    tcp = gso != GSO_UDP_L4
    if proto != (IPPROTO_TCP if tcp else IPPROTO_UDP):
        raise SegmentError("l4_protocol")
    if len(frame) < l4 + (20 if tcp else 8):
        raise SegmentError("short")
    l4_len = (frame[l4 + 12] >> 4) * 4 if tcp else 8
    end = l4 + l4_len
    if l4_len < (20 if tcp else 8) or end > len(frame):
        raise SegmentError("l4_header")
    payload = memoryview(frame)[end:]
    if len(payload) > mss * MAX_SEGMENTS:
        raise SegmentError("gso_size")
    header = bytearray(frame[:end])
    seq0 = int.from_bytes(header[l4 + 4 : l4 + 8], "big") if tcp else 0
    tcp_flags = header[l4 + 13] if tcp else 0
    ip_id = int.from_bytes(header[l3 + 4 : l3 + 6], "big") if version == 4 else 0
    addresses = bytes(src) + bytes(dst)
    out: list[bytes] = []
    count = max(1, -(-len(payload) // mss))
    for i in range(count):
        piece = payload[i * mss : (i + 1) * mss]
        l4_total = l4_len + len(piece)
        if version == 4:
            header[l3 + 2 : l3 + 4] = (ihl + l4_total).to_bytes(2, "big")
            header[l3 + 4 : l3 + 6] = ((ip_id + i) & 0xFFFF).to_bytes(2, "big")
            header[l3 + 10 : l3 + 12] = b"\x00\x00"
            header[l3 + 10 : l3 + 12] = checksum(header[l3:l4]).to_bytes(2, "big")
        else:
            header[l3 + 4 : l3 + 6] = (l4_total).to_bytes(2, "big")
        pseudo = pseudo_header(addresses, proto, l4_total)
        if tcp:
            header[l4 + 4 : l4 + 8] = ((seq0 + i * mss) & 0xFFFFFFFF).to_bytes(4, "big")
            f = tcp_flags
            if i != count - 1:
                f &= ~(TCP_FIN | TCP_PSH)
            if i != 0:
                f &= ~TCP_CWR
            header[l4 + 13] = f
            csum_pos = l4 + 16
        else:
            header[l4 + 4 : l4 + 6] = l4_total.to_bytes(2, "big")
            csum_pos = l4 + 6
        header[csum_pos : csum_pos + 2] = b"\x00\x00"
        csum = checksum(pseudo + header[l4:end] + piece)
        if not tcp and csum == 0:
            csum = 0xFFFF  # UDP: 0 means "no checksum"
        header[csum_pos : csum_pos + 2] = csum.to_bytes(2, "big")
        out.append(bytes(header) + piece)
    return out
