"""Layer-2 emulation for TUN members: Ethernet on the VLAN, IP on the interface.

A TUN interface carries IP packets only, yet its member must look like any other
station on the VLAN. This module turns IP packets from the TUN into Ethernet
units and back, and plays the station's part in ARP and IPv6 neighbour
discovery:

  TUN -> IP packet -> destination MAC (broadcast / multicast mapping / neighbour
         table; unknown: queue the packet and send an ARP request or a neighbour
         solicitation) -> Ethernet unit for the VLAN
  VLAN -> unit -> ARP / NDP handled here (answer requests for our addresses,
         learn from replies and from every sender) -> IP packet for the TUN

Units carry the 10-byte offload header in front; its checksum start and header
length are shifted by the Ethernet header's 14 bytes when crossing over.
Everything here is bounded: the neighbour table, the packets waiting for an
address, and the requests sent per address per second.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..tap.device import VNET_HDR_LEN, ZERO_VNET_HDR, internet_checksum
from .classify import ipv4_group_mac, ipv6_group_mac

ETH_HLEN = 14
BROADCAST = b"\xff" * 6
ETH_IP, ETH_ARP, ETH_IPV6 = 0x0800, 0x0806, 0x86DD
NEIGHBOUR_TTL_S = 300.0
MAX_NEIGHBOURS = 1024
MAX_WAITING = 16  # packets queued per unresolved address
MAX_UNRESOLVED = 256
REQUEST_INTERVAL_S = 1.0
ICMPV6, NS, NA = 58, 135, 136


@dataclass
class _Waiting:
    packets: list[bytes] = field(default_factory=list)
    asked: float = -1e9


class L2Emulator:
    def __init__(
        self,
        *,
        mac: bytes,
        addresses: Iterable[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mac = mac
        self._clock = clock
        self.v4: set[bytes] = set()
        self.v4_broadcasts: set[bytes] = {BROADCAST[:4]}
        self.v6: set[bytes] = set()
        self.set_addresses(addresses)
        self.neighbours: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        self._waiting: OrderedDict[bytes, _Waiting] = OrderedDict()
        self.dropped = 0

    def set_addresses(self, addresses: Iterable[str]) -> None:
        """The station's addresses ("ip/prefix"): those it answers ARP and NDP for."""
        v4: set[bytes] = set()
        broadcasts = {BROADCAST[:4]}
        v6: set[bytes] = set()
        for text in addresses:
            iface = ipaddress.ip_interface(text)
            if isinstance(iface, ipaddress.IPv4Interface):
                v4.add(iface.ip.packed)
                if iface.network.prefixlen < 31:
                    broadcasts.add(iface.network.broadcast_address.packed)
            else:
                v6.add(iface.ip.packed)
        self.v4, self.v4_broadcasts, self.v6 = v4, broadcasts, v6

    # ---- TUN -> VLAN -----------------------------------------------------------------

    def from_tun(self, unit: bytes) -> list[bytes]:
        """Ethernet units for one IP unit from the TUN (several when a queue drains)."""
        packet = unit[VNET_HDR_LEN:]
        if not packet:
            return []
        version = packet[0] >> 4
        if version == 4 and len(packet) >= 20:
            dst, ethertype = packet[16:20], ETH_IP
            if dst in self.v4_broadcasts:
                mac: bytes | None = BROADCAST
            elif 224 <= dst[0] <= 239:
                mac = ipv4_group_mac(dst)
            else:
                mac = self._lookup(dst)
        elif version == 6 and len(packet) >= 40:
            dst, ethertype = packet[24:40], ETH_IPV6
            mac = ipv6_group_mac(dst) if dst[0] == 0xFF else self._lookup(dst)
        else:
            self.dropped += 1
            return []
        if mac is not None:
            return [_to_frame(unit, mac, self.mac, ethertype)]
        return self._wait(dst, unit)

    def _lookup(self, ip: bytes) -> bytes | None:
        entry = self.neighbours.get(ip)
        if entry is None or self._clock() - entry[1] > NEIGHBOUR_TTL_S:
            return None
        return entry[0]

    def _wait(self, ip: bytes, unit: bytes) -> list[bytes]:
        waiting = self._waiting.get(ip)
        if waiting is None:
            if len(self._waiting) >= MAX_UNRESOLVED:
                _, old = self._waiting.popitem(last=False)
                self.dropped += len(old.packets)
            waiting = self._waiting[ip] = _Waiting()
        if len(waiting.packets) >= MAX_WAITING:
            waiting.packets.pop(0)
            self.dropped += 1
        waiting.packets.append(unit)
        now = self._clock()
        if now - waiting.asked < REQUEST_INTERVAL_S:
            return []
        waiting.asked = now
        return [self._arp_request(ip) if len(ip) == 4 else self._solicit(ip)]

    # ---- VLAN -> TUN -----------------------------------------------------------------

    def from_vlan(self, unit: bytes) -> tuple[bytes | None, list[bytes]]:
        """(IP unit for the TUN or None, Ethernet units to send back to the VLAN)."""
        frame = unit[VNET_HDR_LEN:]
        if len(frame) < ETH_HLEN:
            return None, []
        dst, src = frame[0:6], frame[6:12]
        ethertype = int.from_bytes(frame[12:14], "big")
        if ethertype == ETH_ARP:
            return None, self._arp(frame[ETH_HLEN:])
        if dst != self.mac and not dst[0] & 1:
            return None, []
        replies: list[bytes] = []
        if ethertype == ETH_IP and len(frame) >= ETH_HLEN + 20:
            replies = self._learn(frame[ETH_HLEN + 12 : ETH_HLEN + 16], src)
        elif ethertype == ETH_IPV6 and len(frame) >= ETH_HLEN + 40:
            ip6 = frame[ETH_HLEN:]
            if ip6[6] == ICMPV6 and len(ip6) >= 40 + 24 and ip6[40] in (NS, NA):
                return None, self._ndp(ip6, src)
            replies = self._learn(ip6[8:24], src)
        else:
            return None, []
        return _to_ip(unit), replies

    def _learn(self, ip: bytes, mac: bytes) -> list[bytes]:
        """Record ip -> mac; return the packets that were waiting for it."""
        if mac[0] & 1 or not any(ip):
            return []
        if ip not in self.neighbours and len(self.neighbours) >= MAX_NEIGHBOURS:
            self.neighbours.popitem(last=False)
        self.neighbours[ip] = (mac, self._clock())
        self.neighbours.move_to_end(ip)
        waiting = self._waiting.pop(ip, None)
        if waiting is None:
            return []
        ethertype = ETH_IP if len(ip) == 4 else ETH_IPV6
        return [_to_frame(u, mac, self.mac, ethertype) for u in waiting.packets]

    def _arp(self, arp: bytes) -> list[bytes]:
        if len(arp) < 28 or arp[0:6] != b"\x00\x01\x08\x00\x06\x04":
            return []
        op = int.from_bytes(arp[6:8], "big")
        sha, spa, tpa = arp[8:14], arp[14:18], arp[24:28]
        out = self._learn(spa, sha)
        if op == 1 and tpa in self.v4:
            out.append(self._arp_frame(2, dst_mac=sha, target_mac=sha, spa=tpa, tpa=spa))
        return out

    def _arp_request(self, ip: bytes) -> bytes:
        own = min(self.v4) if self.v4 else bytes(4)
        return self._arp_frame(1, dst_mac=BROADCAST, target_mac=bytes(6), spa=own, tpa=ip)

    def _arp_frame(
        self, op: int, *, dst_mac: bytes, target_mac: bytes, spa: bytes, tpa: bytes
    ) -> bytes:
        body = (
            b"\x00\x01\x08\x00\x06\x04" + struct.pack(">H", op) + self.mac + spa + target_mac + tpa
        )
        return ZERO_VNET_HDR + dst_mac + self.mac + struct.pack(">H", ETH_ARP) + body

    def _ndp(self, ip6: bytes, src_mac: bytes) -> list[bytes]:
        icmp = ip6[40:]
        target = icmp[8:24]
        source = ip6[8:24]
        out = self._learn(source, src_mac) if any(source) else []
        if icmp[0] == NA:
            out += self._learn(target, _lladdr(icmp[24:], 2) or src_mac)
        elif target in self.v6:
            # Solicited, so answer the solicitor directly (RFC 4861 7.2.4).
            dst_ip = source if any(source) else bytes.fromhex("ff020000000000000000000000000001")
            flags = 0x60000000 if any(source) else 0x20000000  # solicited|override, or override
            body = struct.pack(">BBHI", NA, 0, 0, flags) + target + b"\x02\x01" + self.mac
            out.append(self._ipv6_frame(src_mac, target, dst_ip, body))
        return out

    def _solicit(self, ip: bytes) -> bytes:
        group = bytes.fromhex("ff0200000000000000000001ff") + ip[13:16]
        # A link-local source when there is one (fe80::/10 sorts first), as a kernel does.
        source = min(self.v6) if self.v6 else _link_local(self.mac)
        body = struct.pack(">BBHI", NS, 0, 0, 0) + ip + b"\x01\x01" + self.mac
        return self._ipv6_frame(ipv6_group_mac(group), source, group, body)

    def _ipv6_frame(self, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, icmp: bytes) -> bytes:
        pseudo = src_ip + dst_ip + struct.pack(">I3xB", len(icmp), ICMPV6)
        csum = internet_checksum(pseudo + icmp)
        icmp = icmp[:2] + struct.pack(">H", csum) + icmp[4:]
        header = struct.pack(">IHBB", 0x60000000, len(icmp), ICMPV6, 255) + src_ip + dst_ip
        return ZERO_VNET_HDR + dst_mac + self.mac + struct.pack(">H", ETH_IPV6) + header + icmp


def _to_frame(unit: bytes, dst: bytes, src: bytes, ethertype: int) -> bytes:
    return (
        _shift_offload(unit[:VNET_HDR_LEN], ETH_HLEN)
        + dst
        + src
        + struct.pack(">H", ethertype)
        + unit[VNET_HDR_LEN:]
    )


def _to_ip(unit: bytes) -> bytes:
    return _shift_offload(unit[:VNET_HDR_LEN], -ETH_HLEN) + unit[VNET_HDR_LEN + ETH_HLEN :]


def _shift_offload(hdr: bytes, delta: int) -> bytes:
    """Move the offload header's header length and checksum start by `delta` bytes."""
    if hdr == ZERO_VNET_HDR:
        return hdr
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = struct.unpack("<BBHHHH", hdr)
    if hdr_len:
        hdr_len = max(0, hdr_len + delta)
    if flags & 1:
        csum_start = max(0, csum_start + delta)
    return struct.pack("<BBHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


def _link_local(mac: bytes) -> bytes:
    eui = bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return b"\xfe\x80" + bytes(6) + eui


def _lladdr(options: bytes, kind: int) -> bytes | None:
    """The link-layer address option of `kind` (1 source, 2 target) in NDP options."""
    p = 0
    while p + 8 <= len(options):
        otype, olen = options[p], options[p + 1] * 8
        if olen == 0:
            return None
        if otype == kind:
            return options[p + 2 : p + 8]
        p += olen
    return None
