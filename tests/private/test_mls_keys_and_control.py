"""MlsKeyProvider epochs and grace windows; CONTROL packet format and signatures."""

from __future__ import annotations

import dataclasses

import pytest

from peertap.sidecar import identity, wire
from peertap.sidecar.crypto.mls_keys import NO_EPOCH, MlsKeyProvider
from peertap.sidecar.private import envelope
from peertap.sidecar.private import messages as m

VLAN = b"\x07" * 16


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_provider_before_the_first_epoch_sends_with_a_key_it_cannot_open() -> None:
    keys = MlsKeyProvider(vlan_id=VLAN, grace_s=10)
    assert keys.current().epoch == NO_EPOCH
    assert not keys.joined
    assert keys.lookup(keys.current().mls_id) is None


def test_previous_epoch_opens_during_the_grace_window_then_is_forgotten() -> None:
    clock = Clock()
    keys = MlsKeyProvider(vlan_id=VLAN, grace_s=10, clock=clock)
    first = keys.install(epoch=1, frame_key=b"\x01" * 32)
    second = keys.install(epoch=2, frame_key=b"\x02" * 32)
    assert keys.current() is second
    clock.now = 9.9
    assert keys.lookup(first.mls_id) is first
    clock.now = 10.0
    assert keys.lookup(first.mls_id) is None
    assert keys.held_mls_ids() == [second.mls_id]


def test_leaving_keeps_old_keys_only_for_the_grace_window() -> None:
    clock = Clock()
    keys = MlsKeyProvider(vlan_id=VLAN, grace_s=5, clock=clock)
    held = keys.install(epoch=1, frame_key=b"\x01" * 32)
    keys.leave()
    assert keys.current().mls_id != held.mls_id
    assert keys.lookup(held.mls_id) is held
    clock.now = 5
    assert keys.held_mls_ids() == []


NODE = identity.generate()


def _control(body: bytes = b"hello body") -> wire.Control:
    return envelope.sign(NODE, hop_limit=5, timestamp=9, vlan_id=VLAN, kind=m.HELLO, body=body)


def test_control_packets_round_trip_and_verify() -> None:
    packet = _control().encode()
    assert wire.packet_type(packet) == wire.TYPE_CONTROL
    msg = wire.decode_control(packet)
    assert (msg.timestamp, msg.vlan_id, msg.kind, msg.body) == (
        9,
        VLAN,
        m.HELLO,
        b"hello body",
    )
    assert msg.signer == NODE.public_bytes
    assert envelope.verify(msg)


def test_relays_may_lower_the_hop_limit_of_a_signed_control_packet() -> None:
    msg = wire.decode_control(wire.with_hop_limit(_control().encode(), 1))
    assert msg.hop_limit == 1 and envelope.verify(msg)


@pytest.mark.parametrize("field", ["timestamp", "vlan_id", "kind", "body", "signer"])
def test_any_change_to_a_signed_control_packet_breaks_its_signature(field: str) -> None:
    msg = _control()
    value = getattr(msg, field)
    changed: object = value + 1 if isinstance(value, int) else bytes([value[0] ^ 1]) + value[1:]
    if field == "signer":
        changed = identity.generate().public_bytes
    fields: dict[str, object] = {field: changed}
    tampered = wire.decode_control(dataclasses.replace(msg, **fields).encode())  # type: ignore[arg-type]
    assert not envelope.verify(tampered)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (_control().encode()[:100], "short"),
        (_control().encode()[:3] + b"\x01" + _control().encode()[4:], "flags"),
        (wire.with_hop_limit(_control().encode(), 0), "hop_limit"),
    ],
    ids=["short", "flags", "hop_limit"],  # the packets are random: stable ids for xdist
)
def test_malformed_control_packets_name_their_fault(packet: bytes, reason: str) -> None:
    with pytest.raises(wire.MalformedPacket) as info:
        wire.decode_control(packet)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "message",
    [
        m.Hello(b"\x01" * 16, 7, b"\x02" * 16, 5, b"{cred}"),
        m.Hello(b"\x01" * 16, 7, b"\x02" * 16, 5, b"", b"\x09" * 16),
        m.KeyPackageOffer(b"\x03" * 16, b"kp bytes"),
        m.EpochMessage(b"\x04" * 16, 2**40, b"commit bytes"),
        m.Directed((b"\x05" * 32, b"\x06" * 32), m.WELCOME, b"welcome bytes"),
    ],
)
def test_control_bodies_round_trip(
    message: m.Hello | m.KeyPackageOffer | m.EpochMessage | m.Directed,
) -> None:
    assert type(message).decode(message.encode()) == message


@pytest.mark.parametrize("cls", [m.Hello, m.KeyPackageOffer, m.EpochMessage])
def test_truncated_control_bodies_are_malformed(
    cls: type[m.Hello | m.KeyPackageOffer | m.EpochMessage],
) -> None:
    with pytest.raises(m.MalformedControl):
        cls.decode(b"\x00" * 16)
