"""Sender-bound frames of private VLANs: three members' real ports and keys in memory.
A member holding the group key still cannot send as another leaf, for another MAC,
or open replay windows beyond its own."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peertap.sidecar import identity, ids, wire
from peertap.sidecar.counters import Counters
from peertap.sidecar.crypto import senders
from peertap.sidecar.crypto.mls_keys import MlsKeyProvider
from peertap.sidecar.port import PortInfo, VlanPort
from peertap.sidecar.tap.device import ZERO_VNET_HDR

VID = bytes(range(16))
FRAME_KEY = bytes(range(32, 64))
NODES = [identity.generate() for _ in range(3)]
ROSTER = {i: n.public_bytes for i, n in enumerate(NODES)}
MACS = [ids.member_mac(n.public_bytes, VID, bytes(16)) for n in NODES]
BROADCAST = b"\xff" * 6


class Sink:
    """Stands in for the TAP device: keeps what the port writes."""

    def __init__(self) -> None:
        self.units: list[bytes] = []

    def write(self, unit: bytes) -> bool:
        self.units.append(unit)
        return True


def member(i: int, roster: dict[int, bytes] = ROSTER) -> tuple[VlanPort, Sink, MlsKeyProvider]:
    keys = MlsKeyProvider(
        vlan_id=VID, grace_s=10, pairing=senders.Pairing(NODES[i].seed, NODES[i].public_bytes)
    )
    keys.install(epoch=1, frame_key=FRAME_KEY, own_leaf=i, members=roster)
    sink = Sink()
    port = VlanPort(
        info=PortInfo("lab", VID, "pt-test", MACS[i], "mls"),
        sink=sink,
        keys=keys,
        hop_limit=8,
        counters=Counters(),
    )
    return port, sink, keys


def frame(dst: bytes, src: bytes, payload: bytes = b"x" * 64) -> bytes:
    return ZERO_VNET_HDR + dst + src + struct.pack(">H", 0x0800) + payload


def send(port: VlanPort, unit: bytes) -> list[bytes]:
    sealed, _ = port.outgoing([unit], reachable=lambda v, t: True)
    return [p for _, p in sealed]


def deliver(port: VlanPort, packets: list[bytes]) -> None:
    for p in packets:
        port.deliver(p, wire.decode_data(p))


def test_members_exchange_bound_frames_broadcast_and_unicast() -> None:
    (a, _, _), (b, b_sink, _), (c, c_sink, _) = member(0), member(1), member(2)
    packets = send(a, frame(BROADCAST, MACS[0]))
    assert wire.decode_data(packets[0]).flags & wire.FLAG_SENDER_TAGS
    deliver(b, packets)
    deliver(c, packets)
    assert len(b_sink.units) == len(c_sink.units) == 1
    # Unicast to b's MAC is encrypted under a's pair key with b: c, which holds the group
    # key, can neither read nor take it.
    packets = send(a, frame(MACS[1], MACS[0]))
    assert packets[0].endswith(senders.PAIRWISE)
    deliver(b, packets)
    deliver(c, packets)
    assert len(b_sink.units) == 2 and len(c_sink.units) == 1
    assert c.counters.drops["sender_tag"] == 1
    # A tagged packet that names b alone is not for c either.
    (a_keys_epoch,) = [member(0)[2].current()]
    assert a_keys_epoch.binding is not None
    header = wire.DataHeader(
        8, wire.FLAG_SENDER_TAGS, VID, a_keys_epoch.mls_id, a.tokens.broadcast,
        senders.sender_id(0), 2 * 10**15,
    ).encode()  # fmt: skip
    aad = wire.aad_of(header)
    sealed = a_keys_epoch.sender_aead(senders.sender_id(0)).encrypt(
        bytes(4) + (2 * 10**15).to_bytes(8, "big"), frame(BROADCAST, MACS[0]), aad
    )
    only_b = a_keys_epoch.binding.trailer(senders.digest(aad, sealed), [1])
    deliver(c, [header + sealed + only_b])
    assert c.counters.drops["sender_not_for_us"] == 1


def test_a_member_cannot_use_another_members_mac() -> None:
    (a, _, _), (c, c_sink, _) = member(0), member(2)
    deliver(c, send(a, frame(BROADCAST, MACS[1])))
    assert c_sink.units == []
    assert c.counters.drops["sender_mac"] == 1


def test_bundles_are_bound_to_their_sender_and_so_is_every_unit_inside() -> None:
    """Small frames go in bundles, pairwise to one member or tagged for all; a bundle
    opens only for its receivers, and a unit inside it with another member's MAC is
    dropped while the sender's own units arrive."""
    (a, _, _), (b, b_sink, _), (c, c_sink, _) = member(0), member(1), member(2)
    to_b = [frame(MACS[1], MACS[0], bytes([i]) * 60) for i in range(6)]
    to_all = [frame(BROADCAST, MACS[0], bytes([i]) * 60) for i in range(6)]
    for units, wanted in ((to_b, {1}), (to_all, {1, 2})):
        sealed, _ = a.outgoing(units, reachable=lambda v, t: True)
        packets = [p for _, p in sealed]
        assert len(packets) == 1 and wire.decode_data(packets[0]).flags & wire.FLAG_BUNDLE
        deliver(b, packets)
        deliver(c, packets)
        for leaf, sink in ((1, b_sink), (2, c_sink)):
            assert (sink.units[-len(units) :] == units) == (leaf in wanted)
    assert c.counters.drops["pairwise_other"] + c.counters.drops["sender_tag"] >= 1
    mixed = [frame(BROADCAST, MACS[0]), frame(BROADCAST, MACS[1]), frame(BROADCAST, MACS[0])]
    before = len(c_sink.units)
    sealed, _ = a.outgoing(mixed, reachable=lambda v, t: True)
    deliver(c, [p for _, p in sealed])
    assert c_sink.units[before:] == [mixed[0], mixed[2]]
    assert c.counters.drops["sender_mac"] == 1


def test_a_member_cannot_send_as_another_leaf() -> None:
    """a has the frame key and so every sender's AEAD key, but not b's pair key with c."""
    (a, _, a_keys), (c, c_sink, _) = member(0), member(2)
    epoch = a_keys.current()
    assert epoch.binding is not None
    unit = frame(BROADCAST, MACS[1])
    header = wire.DataHeader(
        8,
        wire.FLAG_SENDER_TAGS,
        VID,
        epoch.mls_id,
        a.tokens.broadcast,
        senders.sender_id(1),
        10**15,
    ).encode()
    aad = wire.aad_of(header)
    sealed = epoch.sender_aead(senders.sender_id(1)).encrypt(
        bytes(4) + (10**15).to_bytes(8, "big"), unit, aad
    )
    # Its best guess at a tag for c: its own pair key with c.
    tag = epoch.binding.trailer(senders.digest(aad, sealed), [2])
    deliver(c, [header + sealed + tag])
    # Or a pairwise packet under its own pair key with c, claiming b's sender id.
    pair = epoch.binding.pair_aead(2, 0)
    assert pair is not None
    nonce = bytes(4) + (10**15 + 1).to_bytes(8, "big")
    header2 = header[:60] + (10**15 + 1).to_bytes(8, "big")
    forged = pair.encrypt(nonce, unit, wire.aad_of(header2))
    deliver(c, [header2 + forged + senders.PAIRWISE])
    assert c_sink.units == []
    assert c.counters.drops["sender_tag"] == 2


def test_fresh_sender_ids_open_no_replay_windows_and_replays_are_dropped() -> None:
    (a, _, a_keys), (b, _, _), (c, c_sink, _) = member(0), member(1), member(2)
    genuine = send(b, frame(BROADCAST, MACS[1]))
    deliver(c, genuine)
    epoch = a_keys.current()
    for _ in range(50):
        sender = os.urandom(8)
        header = wire.DataHeader(
            8, wire.FLAG_SENDER_TAGS, VID, epoch.mls_id, a.tokens.broadcast, sender, 10**15
        ).encode()
        body = epoch.sender_aead(sender).encrypt(bytes(12), b"x" * 80, wire.aad_of(header))
        deliver(c, [header + body + struct.pack(">H", 0)])
    assert c.counters.drops["sender_unknown"] == 50
    assert len(c.opener._windows) == 1
    deliver(c, genuine)
    assert c.counters.drops["replay"] == 1
    assert len(c_sink.units) == 1


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda p: p[:-2] + b"\xff\xff", "sender_trailer"),
        (lambda p: p[:3] + bytes([p[3] & ~wire.FLAG_SENDER_TAGS]) + p[4:], "sender_untagged"),
        (lambda p: p[:-3] + bytes([p[-3] ^ 1]) + p[-2:], "sender_tag"),
    ],
)
def test_malformed_trailers_are_counted_drops(mangle, reason) -> None:  # type: ignore[no-untyped-def]
    (a, _, _), (c, c_sink, _) = member(0), member(2)
    packet = send(a, frame(MACS[2], MACS[0]))[0]
    deliver(c, [mangle(packet)])
    assert c_sink.units == []
    assert c.counters.drops[reason] == 1


def test_mac_claims_first_come_never_a_derived_mac_and_only_for_members() -> None:
    book = senders.MacBook(VID)
    book.members(ROSTER.values())
    assert book.owner(MACS[1]) == NODES[1].public_bytes
    assert not book.claim(NODES[0].public_bytes, MACS[1])
    configured = bytes.fromhex("020000000099")
    assert book.claim(NODES[2].public_bytes, configured)
    assert not book.claim(NODES[0].public_bytes, configured)
    book.members([NODES[0].public_bytes, NODES[1].public_bytes])
    assert book.owner(configured) is None and book.owner(MACS[2]) is None


def test_large_units_fragment_below_the_trailer_and_reassemble() -> None:
    (a, _, _), (c, c_sink, _) = member(0), member(2)
    unit = frame(BROADCAST, MACS[0], os.urandom(65420))
    # It would fit one packet without the trailer (fragment.MAX_PLAINTEXT), not with it.
    packets = send(a, unit)
    assert len(packets) == 2 and all(len(p) <= wire.MAX_PACKET for p in packets)
    deliver(c, packets)
    assert c_sink.units == [unit]


@settings(max_examples=300, deadline=None)
@given(
    tail=st.binary(max_size=200),
    flags=st.sampled_from([0, 1, 2, 3, 4, 6]),
    leaf=st.integers(0, 5),
)
def test_any_packet_after_a_valid_header_is_a_counted_drop(
    tail: bytes, flags: int, leaf: int
) -> None:
    c, c_sink, keys = CACHED_C
    epoch = keys.current()
    header = wire.DataHeader(
        8, flags, VID, epoch.mls_id, c.tokens.broadcast, senders.sender_id(leaf), 10**15 + len(tail)
    ).encode()
    packet = header + tail
    try:
        h = wire.decode_data(packet)
    except wire.MalformedPacket:
        return
    before = sum(c.counters.drops.values())
    assert not c.deliver(packet, h)
    assert sum(c.counters.drops.values()) == before + 1
    assert c_sink.units == []


CACHED_C = member(2)
