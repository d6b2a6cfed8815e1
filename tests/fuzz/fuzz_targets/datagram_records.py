"""The datagram path's parsers: UDP datagrams, their record payloads and PATH records.

Input: one mode byte, then a body.
  mode 0  the body is a UDP datagram fed to a node's datagram channel that holds a live
          receive session (keyed by a real OFFER/KEY/ACK exchange; its session id is
          fixed, so mutants of the seeds reach authentication). Asserts the channel
          delivers nothing (nobody but the session's sender can seal) and either counts
          one drop for it or keeps it as a fragment, within the reassembly bounds.
  mode 1  the body as the plaintext of a whole DATA datagram: `unpack_records` either
          raises MalformedDatagram or returns records that `pack_records` turns back
          into the body.
  mode 2  the body as a PATH record: `parse_path_record` either raises MalformedDatagram
          or returns a message that encodes back to the body.
  mode 3  the body as a DATA packet sealed by the session's sender into datagrams of a
          size the first body byte picks, into another channel: asserts it delivers
          exactly that packet (fragmented and reassembled when large), counting nothing.
  mode 4  the body as one GRO receive (the first byte picks the segment size) into the
          attacked channel: asserts nothing is delivered and the reassembly stays
          within its bounds.
  mode 5  as mode 3, but the datagrams arrive joined as one GRO receive: the same
          packet, delivered once, counting nothing.
"""

from __future__ import annotations

import functools
import time

from peertap.sidecar import wire
from peertap.sidecar.datagram import codec, keys
from peertap.sidecar.datagram.channel import DatagramChannel
from peertap.sidecar.datagram.session import MAX_PARTIAL, SendSession

NAME = "datagram_records"
PEER = "12D3KooWFuzzPeer"
OWN_ID = b"\x00\x24\x08\x01\x12\x20" + bytes(32)
PEER_ID = b"\x00\x24\x08\x01\x12\x20" + b"\xff" * 32
SESSION = 0x1122334455667788


@functools.cache
def _world(name: str) -> tuple[DatagramChannel, SendSession]:
    """A channel with a peer whose datagrams it accepts, and that peer's send session.
    Mode 0 attacks world "attacked"; mode 3 uses world "clean", whose records forged
    fragments (which can spoil records in flight under their base counter) never reach."""
    channel = DatagramChannel(own_id=OWN_ID, host="127.0.0.1")
    channel.open()  # a real socket: the OFFER names its port; nothing is sent from it
    sent: list[bytes] = []
    channel.link_up(PEER, PEER_ID, "127.0.0.1", lambda record: sent.append(record) is None)
    offer = codec.parse_path_record(sent[0])
    assert isinstance(offer, codec.Offer)
    enc, key = keys.seal_session(offer.public_key, sender=PEER_ID, receiver=OWN_ID, session=SESSION)
    channel.on_path_record(PEER, codec.Key(SESSION, enc, offer.public_key).encode())
    assert codec.parse_path_record(sent[1]) == codec.Ack(SESSION)
    return channel, SendSession(SESSION, key)


def _data(body: bytes) -> bytes:
    return bytes([wire.VERSION, wire.TYPE_DATA, 8, 0]) + body


def seeds() -> list[bytes]:
    # Sealed by a throwaway session with the live session id: headers that reach the
    # session, ciphertexts that do not authenticate.
    other = SendSession(SESSION, bytes(32))
    sealed = other.seal_records([_data(bytes(100)), _data(b"x" * 3000)], 1400)
    return [
        b"\x00" + sealed[0],
        b"\x00" + sealed[1],
        b"\x00" + codec.Header(codec.KIND_PROBE, 0, 1, SESSION, 7).encode() + bytes(40),
        b"\x01" + codec.pack_records([b"ab", _data(b"y" * 50)]),
        b"\x02" + codec.Offer(4001, bytes(range(32))).encode(),
        b"\x02" + codec.Key(9, bytes(32), bytes(32)).encode(),
        b"\x02" + codec.Ack(9).encode(),
        b"\x03" + bytes([10]) + b"z" * 200,
        b"\x03" + bytes([0]) + b"w" * 5000,
        b"\x04" + bytes([150]) + b"".join(sealed),
        b"\x05" + bytes([3]) + b"v" * 9000,
    ]


def check(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 6, data[1:]
    if mode == 1:
        try:
            records = codec.unpack_records(body)
        except codec.MalformedDatagram:
            return
        assert codec.pack_records(records) == body
        return
    if mode == 2:
        try:
            message = codec.parse_path_record(body)
        except codec.MalformedDatagram:
            return
        assert message.encode() == body
        return
    channel, sender = _world("attacked" if mode in (0, 4) else "clean")
    before = sum(channel.counters.values())
    out: dict[str, list[bytes]] = {}
    if mode == 0:
        partial = channel.stats()["datagram_partial_records"]
        channel.on_datagram(body, time.monotonic(), out)
        assert out == {}, "an unauthenticated datagram delivered records"
        dropped = sum(channel.counters.values()) - before
        kept = channel.stats()["datagram_partial_records"]
        assert dropped == 1 or (dropped == 0 and kept >= partial), (dropped, partial, kept)
        assert kept <= MAX_PARTIAL
        return
    if not body:
        return
    if mode == 4:
        channel._on_run(memoryview(body[1:]), codec.HEADER_LEN + 1 + body[0] * 8, 0.0, out)
        assert out == {}, "an unauthenticated run delivered records"
        assert channel.stats()["datagram_partial_records"] <= MAX_PARTIAL
        return
    packet = _data(body[1:])
    size = 1232 + body[0]
    datagrams = sender.seal_records([packet], size)
    if mode == 5 and len(datagrams) > 1:
        channel._on_run(memoryview(b"".join(datagrams)), len(datagrams[0]), time.monotonic(), out)
    else:
        for datagram in datagrams:
            assert len(datagram) <= size
            channel.on_datagram(datagram, time.monotonic(), out)
    assert out == {PEER: [packet]}
    assert sum(channel.counters.values()) == before
