"""CONTROL messages of any size: split into PARTs, reassembled, and bounded against abuse."""

from __future__ import annotations

import os

import pytest

from peertap.sidecar import identity, wire
from peertap.sidecar.counters import Counters
from peertap.sidecar.private import chunks, envelope
from peertap.sidecar.private import messages as m

SIGNER = identity.generate().public_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _parts(kind: int, body: bytes, part_data: int = chunks.PART_DATA_MAX) -> list[m.Part]:
    out = chunks.split(kind, body, part_data=part_data, max_body=part_data)
    assert all(k == m.PART for k, _ in out)
    return [m.Part.decode(b) for _, b in out]


def test_a_body_that_fits_one_packet_is_sent_as_it_is() -> None:
    assert chunks.split(m.WELCOME, b"small") == [(m.WELCOME, b"small")]
    exact = bytes(chunks.BODY_MAX)
    assert chunks.split(m.WELCOME, exact) == [(m.WELCOME, exact)]


def test_a_large_body_travels_as_signed_parts_that_each_fit_a_packet() -> None:
    node = identity.generate()
    body = os.urandom(3 * chunks.BODY_MAX + 17)
    out = chunks.split(m.WELCOME, body)
    assert len(out) == 4
    r = chunks.Reassembler(counters=Counters())
    got = None
    # Out of order and with a duplicate, as two relay paths may deliver them.
    for kind, part in [out[2], out[0], out[0], out[3], out[1]]:
        packet = envelope.sign(
            node, hop_limit=3, timestamp=1, vlan_id=bytes(16), kind=kind, body=part
        ).encode()
        assert len(packet) <= wire.MAX_PACKET
        msg = wire.decode_control(packet)
        assert envelope.verify(msg)
        got = r.add(msg.signer, m.Part.decode(msg.body)) or got
    assert got == (m.WELCOME, body)
    assert r.pending_bytes == 0


def test_parts_of_two_signers_do_not_mix() -> None:
    body = os.urandom(10_000)
    parts = _parts(m.COMMIT, body, part_data=4000)
    r = chunks.Reassembler(counters=Counters())
    other = identity.generate().public_bytes
    assert r.add(SIGNER, parts[0]) is None
    assert r.add(other, parts[1]) is None
    assert r.add(SIGNER, parts[2]) is None
    assert r.add(SIGNER, parts[1]) == (m.COMMIT, body)


def test_parts_that_do_not_hash_to_their_message_id_are_dropped() -> None:
    counters = Counters()
    r = chunks.Reassembler(counters=counters)
    parts = _parts(m.WELCOME, os.urandom(9000), part_data=4000)
    forged = m.Part(parts[1].message_id, m.WELCOME, 1, parts[1].count, b"x" * 4000)
    assert r.add(SIGNER, parts[0]) is None
    assert r.add(SIGNER, forged) is None
    assert r.add(SIGNER, parts[2]) is None
    assert counters.drops["mvlan_part_mismatch"] == 1
    assert r.pending_bytes == 0


def test_a_part_that_disagrees_on_the_count_drops_the_assembly() -> None:
    counters = Counters()
    r = chunks.Reassembler(counters=counters)
    parts = _parts(m.WELCOME, os.urandom(9000), part_data=4000)
    assert r.add(SIGNER, parts[0]) is None
    liar = m.Part(parts[0].message_id, m.WELCOME, 1, 7, parts[1].data)
    assert r.add(SIGNER, liar) is None
    assert counters.drops["mvlan_part_mismatch"] == 1 and r.pending_bytes == 0


def test_unfinished_messages_expire_and_a_signer_cannot_hold_many() -> None:
    counters = Counters()
    clock = Clock()
    r = chunks.Reassembler(counters=counters, clock=clock)
    for i in range(chunks.PER_SIGNER + 3):
        parts = _parts(m.WELCOME, bytes([i]) * 9000, part_data=4000)
        r.add(SIGNER, parts[0])
    assert counters.drops["mvlan_part_evicted"] == 3
    assert r.pending_bytes == chunks.PER_SIGNER * 4000
    clock.now = chunks.TTL_S + 1
    r.add(identity.generate().public_bytes, _parts(m.COMMIT, bytes(9000), part_data=4000)[0])
    assert counters.drops["mvlan_part_expired"] == chunks.PER_SIGNER
    assert r.pending_bytes == 4000


def test_pending_bytes_stay_bounded_under_a_flood_of_first_parts() -> None:
    counters = Counters()
    r = chunks.Reassembler(counters=counters)
    data = bytes(chunks.PART_DATA_MAX)
    for i in range(chunks.MAX_ASSEMBLIES + 50):
        signer = i.to_bytes(32, "big")
        r.add(signer, m.Part(i.to_bytes(16, "big"), m.WELCOME, 0, 200, data))
        assert r.pending_bytes <= chunks.MAX_PENDING_BYTES
    assert counters.drops["mvlan_part_evicted"] >= 50


def test_a_message_beyond_the_largest_is_refused_on_both_ends() -> None:
    with pytest.raises(chunks.MessageTooLarge):
        chunks.split(m.WELCOME, bytes(chunks.MAX_MESSAGE + 1))
    counters = Counters()
    r = chunks.Reassembler(counters=counters)
    assert r.add(SIGNER, m.Part(bytes(16), m.WELCOME, 0, chunks.MAX_PARTS + 1, b"x")) is None
    assert counters.drops["mvlan_part_too_large"] == 1


@pytest.mark.parametrize(
    "body",
    [
        b"",
        bytes(m.PART_HEADER_LEN),  # no data
        bytes(16) + bytes([m.PART]) + b"\x00\x00\x00\x02" + b"x",  # a PART of PARTs
        bytes(16) + bytes([99]) + b"\x00\x00\x00\x02" + b"x",  # unknown kind
        bytes(16) + bytes([m.WELCOME]) + b"\x00\x02\x00\x02" + b"x",  # index >= count
    ],
)
def test_malformed_parts_are_refused(body: bytes) -> None:
    with pytest.raises(m.MalformedControl):
        m.Part.decode(body)
