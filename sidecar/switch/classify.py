"""Destination classes of Ethernet frames and IGMP/MLD snooping.

Flooded (sent to the broadcast token, reaching every member): broadcast,
IPv4 link-local multicast 224.0.0.0/24 (01:00:5e:00:00:xx), IPv6 all-nodes /
all-routers style groups (33:33:00:00:00:xx), solicited-node groups
(33:33:ff:xx:xx:xx, so neighbour discovery never depends on snooping state),
and non-IP multicast. Other IP multicast goes to the group's token and reaches
only members that joined the group, as learned from their IGMP/MLD reports.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from enum import Enum

ETH_HLEN = 14
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100


class Dest(Enum):
    UNICAST = 1
    FLOOD = 2
    GROUP = 3


def classify(dst: bytes) -> Dest:
    if not dst[0] & 1:
        return Dest.UNICAST
    if dst[0] == 0x01 and dst[1] == 0x00 and dst[2] == 0x5E:
        # 224.0.0.0/24 maps to 01:00:5e:00:00:xx; must be flooded (RFC 4541 2.1.2).
        return Dest.FLOOD if dst[3] == 0 and dst[4] == 0 else Dest.GROUP
    if dst[0] == 0x33 and dst[1] == 0x33:
        if dst[2] == 0xFF or (dst[2] == 0 and dst[3] == 0 and dst[4] == 0):
            return Dest.FLOOD
        return Dest.GROUP
    return Dest.FLOOD


def ipv4_group_mac(group: bytes) -> bytes:
    return b"\x01\x00\x5e" + bytes([group[1] & 0x7F]) + group[2:4]


def ipv6_group_mac(group: bytes) -> bytes:
    return b"\x33\x33" + group[12:16]


# IGMP types (RFC 2236, RFC 3376) and MLD types (RFC 2710, RFC 3810).
IGMP_V1_REPORT, IGMP_V2_REPORT, IGMP_V2_LEAVE, IGMP_V3_REPORT = 0x12, 0x16, 0x17, 0x22
MLD_V1_REPORT, MLD_V1_DONE, MLD_V2_REPORT = 131, 132, 143
# Group record types: MODE_IS_EXCLUDE, CHANGE_TO_EXCLUDE join; TO_INCLUDE with no sources leaves.
_JOIN_RECORDS = {2, 4}
_LEAVE_RECORD = 3
_IPV6_EXT_HEADERS = {0, 43, 60}


def snoop(frame: bytes) -> tuple[list[bytes], list[bytes]]:
    """(joined group MACs, left group MACs) announced by an IGMP/MLD report in this frame.

    Malformed or truncated reports yield nothing; snooping never raises.
    """
    try:
        return _snoop(frame)
    except (IndexError, struct.error, ValueError):
        return [], []


def _snoop(frame: bytes) -> tuple[list[bytes], list[bytes]]:
    if len(frame) < ETH_HLEN:
        return [], []
    ethertype = int.from_bytes(frame[12:14], "big")
    off = ETH_HLEN
    if ethertype == ETH_P_8021Q:
        ethertype = int.from_bytes(frame[16:18], "big")
        off += 4
    if ethertype == ETH_P_IP:
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] != 2:  # IGMP
            return [], []
        return _igmp(frame[off + ihl :])
    if ethertype == ETH_P_IPV6:
        nxt = frame[off + 6]
        p = off + 40
        while nxt in _IPV6_EXT_HEADERS:
            nxt = frame[p]
            p += (frame[p + 1] + 1) * 8
        if nxt != 58:  # ICMPv6
            return [], []
        return _mld(frame[p:])
    return [], []


def _multicast_v4(group: bytes) -> bool:
    return ipaddress.IPv4Address(group).is_multicast


def _multicast_v6(group: bytes) -> bool:
    return group[0] == 0xFF


def _igmp(msg: bytes) -> tuple[list[bytes], list[bytes]]:
    return _report(
        msg,
        v1_types=(IGMP_V1_REPORT, IGMP_V2_REPORT),
        leave_type=IGMP_V2_LEAVE,
        v1_group=slice(4, 8),
        v2_type=IGMP_V3_REPORT,
        addr_len=4,
        is_group=_multicast_v4,
        group_mac=ipv4_group_mac,
    )


def _mld(msg: bytes) -> tuple[list[bytes], list[bytes]]:
    return _report(
        msg,
        v1_types=(MLD_V1_REPORT,),
        leave_type=MLD_V1_DONE,
        v1_group=slice(8, 24),
        v2_type=MLD_V2_REPORT,
        addr_len=16,
        is_group=_multicast_v6,
        group_mac=ipv6_group_mac,
    )


def _report(
    msg: bytes,
    *,
    v1_types: tuple[int, ...],
    leave_type: int,
    v1_group: slice,
    v2_type: int,
    addr_len: int,
    is_group: Callable[[bytes], bool],
    group_mac: Callable[[bytes], bytes],
) -> tuple[list[bytes], list[bytes]]:
    """Joins and leaves of an IGMP or MLD report; both versions share this shape."""
    t = msg[0]
    if t in v1_types or t == leave_type:
        group = msg[v1_group]
        if len(group) != addr_len or not is_group(group):
            return [], []
        mac = group_mac(group)
        return ([], [mac]) if t == leave_type else ([mac], [])
    if t != v2_type:
        return [], []
    joins: list[bytes] = []
    leaves: list[bytes] = []
    count = int.from_bytes(msg[6:8], "big")
    p = 8
    for _ in range(count):
        # Group record: type, aux data length (words), source count, group, sources, aux.
        rtype, aux, nsrc = msg[p], msg[p + 1], int.from_bytes(msg[p + 2 : p + 4], "big")
        group = msg[p + 4 : p + 4 + addr_len]
        if len(group) != addr_len:
            break
        if is_group(group):
            if rtype in _JOIN_RECORDS:
                joins.append(group_mac(group))
            elif rtype == _LEAVE_RECORD and nsrc == 0:
                leaves.append(group_mac(group))
        p += 4 + addr_len + addr_len * nsrc + 4 * aux
    return joins, leaves
