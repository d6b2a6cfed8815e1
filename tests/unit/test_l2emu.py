"""L2 emulation for TUN members: IP <-> Ethernet, ARP and neighbour discovery."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given
from hypothesis import strategies as st

from peertap.sidecar.switch import l2emu
from peertap.sidecar.switch.l2emu import L2Emulator
from peertap.sidecar.tap.device import ZERO_VNET_HDR, internet_checksum

MAC = bytes.fromhex("020000000005")
PEER_MAC = bytes.fromhex("020000000009")
ME = ipaddress.IPv4Address("10.250.0.5").packed
PEER = ipaddress.IPv4Address("10.250.0.9").packed
ME6 = ipaddress.IPv6Address("fd00::5").packed
PEER6 = ipaddress.IPv6Address("fd00::9").packed


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def emu(clock: Clock | None = None) -> L2Emulator:
    return L2Emulator(mac=MAC, addresses=["10.250.0.5/24", "fd00::5/64"], clock=clock or Clock())


def ipv4(src: bytes, dst: bytes, payload: bytes = b"data") -> bytes:
    return ZERO_VNET_HDR + bytes([0x45, 0, 0, 20 + len(payload)]) + bytes(8) + src + dst + payload


def ipv6(src: bytes, dst: bytes, nxt: int = 17, payload: bytes = b"data") -> bytes:
    return (
        ZERO_VNET_HDR
        + struct.pack(">IHBB", 0x60000000, len(payload), nxt, 64)
        + src
        + dst
        + payload
    )


def arp(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes, dst: bytes) -> bytes:
    body = b"\x00\x01\x08\x00\x06\x04" + struct.pack(">H", op) + sha + spa + tha + tpa
    return ZERO_VNET_HDR + dst + sha + b"\x08\x06" + body


def test_packet_to_an_unknown_address_waits_for_arp_and_is_released_by_the_reply() -> None:
    e = emu()
    [request] = e.from_tun(ipv4(ME, PEER))
    frame = request[10:]
    assert frame[0:6] == l2emu.BROADCAST and frame[12:14] == b"\x08\x06"
    assert frame[14 + 24 : 14 + 28] == PEER and frame[14 + 14 : 14 + 18] == ME
    assert e.from_tun(ipv4(ME, PEER, b"second")) == []  # asked within the last second
    packet, released = e.from_vlan(arp(2, PEER_MAC, PEER, MAC, ME, dst=MAC))
    assert packet is None
    assert [u[10:16] for u in released] == [PEER_MAC, PEER_MAC]
    assert released[1].endswith(b"second")
    [direct] = e.from_tun(ipv4(ME, PEER))
    assert direct[10:16] == PEER_MAC and direct[16:22] == MAC


def test_arp_requests_for_our_address_are_answered_and_others_ignored() -> None:
    e = emu()
    _, [reply] = e.from_vlan(arp(1, PEER_MAC, PEER, bytes(6), ME, dst=l2emu.BROADCAST))
    frame = reply[10:]
    assert frame[0:6] == PEER_MAC and frame[14 + 6 : 14 + 8] == b"\x00\x02"
    assert frame[14 + 8 : 14 + 14] == MAC and frame[14 + 14 : 14 + 18] == ME
    other = ipaddress.IPv4Address("10.250.0.77").packed
    assert e.from_vlan(arp(1, PEER_MAC, PEER, bytes(6), other, dst=l2emu.BROADCAST)) == (None, [])


def test_broadcast_and_multicast_need_no_resolution() -> None:
    e = emu()
    bcast = ipaddress.IPv4Address("10.250.0.255").packed
    assert e.from_tun(ipv4(ME, bcast))[0][10:16] == l2emu.BROADCAST
    group = ipaddress.IPv4Address("239.1.2.3").packed
    assert e.from_tun(ipv4(ME, group))[0][10:16] == bytes.fromhex("01005e010203")
    all_nodes = ipaddress.IPv6Address("ff02::1").packed
    assert e.from_tun(ipv6(ME6, all_nodes))[0][10:16] == bytes.fromhex("333300000001")


def test_frames_for_us_become_ip_packets_and_teach_the_sender() -> None:
    e = emu()
    unit = ZERO_VNET_HDR + MAC + PEER_MAC + b"\x08\x00" + ipv4(PEER, ME)[10:]
    packet, replies = e.from_vlan(unit)
    assert packet == ipv4(PEER, ME) and replies == []
    assert e.from_tun(ipv4(ME, PEER))[0][10:16] == PEER_MAC
    # Unicast frames for another station are not ours.
    other = ZERO_VNET_HDR + PEER_MAC + MAC + b"\x08\x00" + ipv4(ME, PEER)[10:]
    assert e.from_vlan(other) == (None, [])


def test_ipv6_neighbour_solicitation_is_answered_with_a_valid_advertisement() -> None:
    e = emu()
    ns = struct.pack(">BBHI", 135, 0, 0, 0) + ME6 + b"\x01\x01" + PEER_MAC
    group = bytes.fromhex("ff0200000000000000000001ff") + ME6[13:]
    unit = ipv6(PEER6, group, nxt=58, payload=ns)
    unit = unit[:10] + bytes.fromhex("3333ff000005") + PEER_MAC + b"\x86\xdd" + unit[10:]
    packet, [na] = e.from_vlan(unit)
    assert packet is None
    frame = na[10:]
    assert frame[0:6] == PEER_MAC
    ip6 = frame[14:]
    icmp = ip6[40:]
    assert icmp[0] == 136 and icmp[8:24] == ME6 and icmp[-6:] == MAC
    pseudo = ip6[8:24] + ip6[24:40] + struct.pack(">I3xB", len(icmp), 58)
    assert internet_checksum(pseudo + icmp) == 0


def test_solicitations_are_answered_for_the_addresses_set_and_no_longer_after_removal() -> None:
    e = emu()
    later = ipaddress.IPv6Address("fe80::1234").packed

    def solicit(target: bytes) -> list[bytes]:
        ns = struct.pack(">BBHI", 135, 0, 0, 0) + target + b"\x01\x01" + PEER_MAC
        group = bytes.fromhex("ff0200000000000000000001ff") + target[13:]
        unit = ipv6(PEER6, group, nxt=58, payload=ns)
        unit = unit[:10] + bytes.fromhex("3333ff000005") + PEER_MAC + b"\x86\xdd" + unit[10:]
        return e.from_vlan(unit)[1]

    assert solicit(later) == []
    e.set_addresses(["10.250.0.5/24", "fd00::5/64", "fe80::1234/64"])
    [na] = solicit(later)
    assert na[10 + 14 + 40 + 8 : 10 + 14 + 40 + 24] == later
    e.set_addresses(["10.250.0.5/24"])
    assert solicit(later) == [] and solicit(ME6) == []


def test_ipv6_unknown_neighbour_is_solicited_then_learned_from_the_advertisement() -> None:
    e = emu()
    [ns] = e.from_tun(ipv6(ME6, PEER6))
    assert ns[10:16] == bytes.fromhex("3333ff000009")
    na = struct.pack(">BBHI", 136, 0, 0, 0x60000000) + PEER6 + b"\x02\x01" + PEER_MAC
    unit = ipv6(PEER6, ME6, nxt=58, payload=na)
    unit = unit[:10] + MAC + PEER_MAC + b"\x86\xdd" + unit[10:]
    _, released = e.from_vlan(unit)
    assert len(released) == 1 and released[0][10:16] == PEER_MAC


def test_waiting_packets_and_neighbours_are_bounded() -> None:
    clock = Clock()
    e = emu(clock)
    for i in range(l2emu.MAX_WAITING + 5):
        e.from_tun(ipv4(ME, PEER, bytes([i])))
    assert e.dropped == 5
    for i in range(l2emu.MAX_UNRESOLVED + 3):
        e.from_tun(ipv4(ME, bytes([10, 9, i // 256, i % 256])))
    assert len(e._waiting) <= l2emu.MAX_UNRESOLVED
    clock.t += l2emu.NEIGHBOUR_TTL_S + 1
    e.from_vlan(arp(2, PEER_MAC, PEER, MAC, ME, dst=MAC))
    clock.t += l2emu.NEIGHBOUR_TTL_S + 1
    assert e.from_tun(ipv4(ME, PEER))[0][10:16] == l2emu.BROADCAST  # expired: ask again


def test_offload_header_offsets_shift_with_the_ethernet_header() -> None:
    hdr = struct.pack("<BBHHHH", 1, 1, 40, 1448, 20, 16)
    e = emu()
    e.from_vlan(arp(2, PEER_MAC, PEER, MAC, ME, dst=MAC))
    [unit] = e.from_tun(hdr + ipv4(ME, PEER)[10:])
    assert struct.unpack("<BBHHHH", unit[:10]) == (1, 1, 54, 1448, 34, 16)
    back, _ = e.from_vlan(unit[:10] + MAC + PEER_MAC + unit[22:])
    assert back is not None and back[:10] == hdr


@given(st.binary(max_size=120))
def test_garbage_from_either_side_never_raises(data: bytes) -> None:
    e = emu()
    e.from_tun(ZERO_VNET_HDR + data)
    e.from_vlan(ZERO_VNET_HDR + data)
    e.from_vlan(ZERO_VNET_HDR + MAC + PEER_MAC + b"\x86\xdd" + data)
    e.from_vlan(ZERO_VNET_HDR + l2emu.BROADCAST + PEER_MAC + b"\x08\x06" + data)
