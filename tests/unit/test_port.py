"""A member port end to end in memory: units sealed by one port are delivered by another
port of the same VLAN, whole, fragmented or not; what a port wants follows its TAP."""

from __future__ import annotations

import ipaddress
import os
import struct

from peertap.sidecar import fragment, vft, wire
from peertap.sidecar.counters import Counters
from peertap.sidecar.crypto.keys import PublicKeyProvider
from peertap.sidecar.port import PortInfo, VlanPort
from peertap.sidecar.tap.device import ZERO_VNET_HDR

VID = bytes(range(16))
CREATOR = bytes(range(32))
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


class Sink:
    """Stands in for the TAP device: keeps what the port writes."""

    def __init__(self) -> None:
        self.units: list[bytes] = []

    def write(self, unit: bytes) -> bool:
        self.units.append(unit)
        return True


def port(mac: bytes) -> tuple[VlanPort, Sink]:
    sink = Sink()
    p = VlanPort(
        info=PortInfo("lab", VID, "pt-test", mac, "public"),
        sink=sink,
        keys=PublicKeyProvider(CREATOR, "lab"),
        hop_limit=8,
        counters=Counters(),
    )
    return p, sink


def frame(dst: bytes, src: bytes, payload: bytes, ethertype: int = 0x0800) -> bytes:
    return ZERO_VNET_HDR + dst + src + struct.pack(">H", ethertype) + payload


def everywhere(vlan: bytes, token: bytes) -> bool:
    return True


def nowhere(vlan: bytes, token: bytes) -> bool:
    return False


def carry(src: VlanPort, dst: VlanPort, units: list[bytes], reachable=everywhere) -> list[bytes]:
    sealed, _ = src.outgoing(units, reachable=reachable)
    for token, packet in sealed:
        assert token in dst.wanted or token == dst.tokens.broadcast
        dst.deliver(packet, wire.decode_data(packet))
    return [p for _, p in sealed]


def test_unicast_to_a_known_mac_uses_its_token_and_arrives_intact() -> None:
    a, _ = port(MAC_A)
    b, sink = port(MAC_B)
    unit = frame(MAC_B, MAC_A, b"hello b" * 10)
    [packet] = carry(a, b, [unit])
    assert wire.decode_data(packet).vft == vft.unicast(MAC_B, VID, b.keys.current().vft_salt)
    assert sink.units == [unit]


def test_unknown_unicast_is_flooded_on_the_broadcast_token() -> None:
    a, _ = port(MAC_A)
    sealed, _ = a.outgoing([frame(MAC_B, MAC_A, b"x" * 50)], reachable=nowhere)
    assert [t for t, _ in sealed] == [vft.broadcast(VID, a.keys.current().vft_salt)]
    assert a.counters.events["unknown_unicast"] == 1


def test_multicast_without_subscribers_is_dropped_and_counted() -> None:
    a, _ = port(MAC_A)
    sealed, _ = a.outgoing(
        [frame(b"\x01\x00\x5e\x01\x02\x03", MAC_A, b"x" * 50)], reachable=nowhere
    )
    assert sealed == []
    assert a.counters.events["multicast_no_subscriber"] == 1


def test_a_super_frame_is_fragmented_and_reassembled_whole() -> None:
    a, _ = port(MAC_A)
    b, sink = port(MAC_B)
    unit = frame(MAC_B, MAC_A, os.urandom(65535 - 14))
    assert len(unit) > fragment.MAX_PLAINTEXT
    packets = carry(a, b, [unit])
    assert len(packets) == 2
    assert all(wire.decode_data(p).flags & wire.FLAG_FRAGMENT for p in packets)
    assert all(len(p) <= wire.MAX_PACKET for p in packets)
    assert sink.units == [unit]


def test_an_igmp_join_from_the_tap_adds_the_group_token() -> None:
    a, _ = port(MAC_A)
    group = ipaddress.IPv4Address("239.1.1.1").packed
    ip = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 1, 2, 0, 0]) + bytes(8)
    report = frame(b"\x01\x00\x5e\x01\x01\x01", MAC_A, ip + bytes([0x16, 0, 0, 0]) + group)
    _, changed = a.outgoing([report], reachable=everywhere)
    assert changed
    assert vft.multicast(b"\x01\x00\x5e\x01\x01\x01", VID, a.keys.current().vft_salt) in a.wanted


def test_a_bridged_source_mac_is_learned_and_wanted() -> None:
    a, _ = port(MAC_A)
    behind = bytes.fromhex("02aabbccddee")
    _, changed = a.outgoing([frame(MAC_B, behind, b"y" * 40)], reachable=everywhere)
    assert changed
    assert a.tokens.unicast(behind) in a.wanted


def test_a_packet_for_another_vlan_key_is_refused_not_written() -> None:
    other = VlanPort(
        info=PortInfo("lab", VID, "pt-x", MAC_A, "public"),
        sink=Sink(),
        keys=PublicKeyProvider(CREATOR, "other"),
        hop_limit=8,
        counters=Counters(),
    )
    b, sink = port(MAC_B)
    sealed, _ = other.outgoing([frame(MAC_B, MAC_A, b"z" * 40)], reachable=everywhere)
    for _, packet in sealed:
        assert not b.deliver(packet, wire.decode_data(packet))
    assert sink.units == []
    assert b.counters.drops["unknown_epoch"] == 1


def test_short_units_from_the_tap_are_counted_not_sent() -> None:
    a, _ = port(MAC_A)
    sealed, _ = a.outgoing([b"\x00" * 12], reachable=everywhere)
    assert sealed == [] and a.counters.drops["tap_short"] == 1


def test_units_a_member_never_finishes_are_given_up_within_the_byte_bound() -> None:
    # A member holding the key sends every fragment of its units but the last; the
    # receiving port holds at most the byte bound, counts what it gives up, and still
    # reassembles an honest super-frame that arrives afterwards.
    a, _ = port(MAC_A)
    b, sink = port(MAC_B)
    unit = frame(MAC_B, MAC_A, os.urandom(65535 - 14))
    unfinished = 2 * fragment.MAX_PENDING_BYTES // len(unit)
    for _ in range(unfinished):
        sealed, _ = a.outgoing([unit], reachable=everywhere)
        for _, packet in sealed[:-1]:
            assert b.deliver(packet, wire.decode_data(packet))
    held = b.reassembler.status()
    assert held["pending_bytes"] <= fragment.MAX_PENDING_BYTES
    assert held["pending_units"] < unfinished
    assert held["evicted_units"] == b.counters.drops["fragment_evicted"] > 0
    assert sink.units == []
    carry(a, b, [unit])
    assert sink.units == [unit]


def test_a_burst_of_small_frames_to_one_mac_goes_as_few_bundles_and_arrives_in_order() -> None:
    a, _ = port(MAC_A)
    b, sink = port(MAC_B)
    small = [frame(MAC_B, MAC_A, i.to_bytes(4, "big") * 16) for i in range(40)]
    big = frame(MAC_B, MAC_A, os.urandom(1400))
    units = [*small[:20], big, *small[20:], frame(wire_broadcast(), MAC_A, b"arp?" * 8)]
    sealed, _ = a.outgoing(units, reachable=everywhere)
    bundles = [p for _, p in sealed if wire.decode_data(p).flags & wire.FLAG_BUNDLE]
    # 20 small units before the big one, 20 after: each run fills whole bundles; the big
    # unit and the lone broadcast go alone, in their places.
    assert len(bundles) >= 2 and len(sealed) < 10
    assert a.counters.events["bundled_units"] == 40
    assert all(len(p) <= 1232 - 38 for p in bundles)
    carry(a, b, units)
    assert sink.units == units


def test_a_bundle_that_does_not_tile_is_dropped_whole_and_counted() -> None:
    """Only a holder of the frame key can seal one: still, a bundle whose lengths do not
    add up (or that holds one unit) writes nothing and is counted."""
    a, _ = port(MAC_A)
    b, sink = port(MAC_B)
    unit = frame(MAC_B, MAC_A, b"x" * 40)
    token = b.tokens.unicast(MAC_B)
    for plaintext in (
        len(unit).to_bytes(2, "big") + unit,  # one unit
        (len(unit) + 1).to_bytes(2, "big") + unit + len(unit).to_bytes(2, "big") + unit,
        len(unit).to_bytes(2, "big") + unit + b"\x00",
        len(unit).to_bytes(2, "big") + unit + b"\x00\x00" + unit,  # a zero length
    ):
        packet = a.sealer.seal(
            vft=token, plaintext=plaintext, hop_limit=8, flags=wire.FLAG_BUNDLE, dst=MAC_B
        )
        assert not b.deliver(packet, wire.decode_data(packet))
    assert b.counters.drops["bundle_malformed"] == 4
    assert sink.units == []
    # A bundle of two short units: both refused by the checks every unit passes.
    packet = a.sealer.seal(
        vft=token,
        plaintext=b"\x00\x05hello\x00\x05world",
        hop_limit=8,
        flags=wire.FLAG_BUNDLE,
        dst=MAC_B,
    )
    assert not b.deliver(packet, wire.decode_data(packet))
    assert b.counters.drops["inner_short"] == 2 and sink.units == []


def test_a_bundle_that_claims_to_be_a_fragment_is_malformed() -> None:
    a, _ = port(MAC_A)
    packet = a.sealer.seal(
        vft=bytes(16),
        plaintext=b"\x00" * 40,
        hop_limit=8,
        flags=wire.FLAG_BUNDLE | wire.FLAG_FRAGMENT,
    )
    try:
        wire.decode_data(packet)
    except wire.MalformedPacket as err:
        assert err.reason == "flags"
    else:
        raise AssertionError("a fragmented bundle was accepted")


def wire_broadcast() -> bytes:
    return b"\xff" * 6
