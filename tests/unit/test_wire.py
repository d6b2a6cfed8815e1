"""Wire codec: DATA and ANNOUNCE round trips, malformed input is rejected with a reason."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peertap.sidecar import wire

b16 = st.binary(min_size=16, max_size=16)
b8 = st.binary(min_size=8, max_size=8)


@given(
    hop=st.integers(1, 255),
    flags=st.sampled_from([0, wire.FLAG_FRAGMENT]),
    vid=b16,
    mid=b16,
    token=b16,
    sender=b8,
    counter=st.integers(0, 2**64 - 1),
    body=st.binary(min_size=16, max_size=200),
)
def test_data_header_round_trips(hop, flags, vid, mid, token, sender, counter, body):
    h = wire.DataHeader(hop, flags, vid, mid, token, sender, counter)
    packet = h.encode() + body
    assert wire.packet_type(packet) == wire.TYPE_DATA
    assert wire.decode_data(packet) == h


@given(
    hop=st.integers(1, 255),
    origin=b16,
    seq=st.integers(0, 2**64 - 1),
    dist=st.integers(0, 255),
    entries=st.lists(st.tuples(b16, b16), max_size=40),
)
def test_announce_round_trips(hop, origin, seq, dist, entries):
    a = wire.Announce(hop, origin, seq, dist, tuple(entries))
    assert wire.decode_announce(a.encode()) == a


@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_raise_anything_but_malformed(data):
    try:
        t = wire.packet_type(data)
        if t == wire.TYPE_DATA:
            wire.decode_data(data)
        else:
            wire.decode_announce(data)
    except wire.MalformedPacket as err:
        assert err.reason


def _data(**kw):
    h = dict(
        hop_limit=5,
        flags=0,
        vlan_id=bytes(16),
        mls_id=bytes(16),
        vft=bytes(16),
        sender=bytes(8),
        counter=1,
    )
    h.update(kw)
    return wire.DataHeader(**h).encode() + bytes(16)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"\x01", "short"),
        (b"\x02\x01\x05\x00" + bytes(80), "version"),
        (b"\x01\x09\x05\x00" + bytes(80), "type"),
        (_data(hop_limit=0), "hop_limit"),
        (_data()[:70], "short"),
        (_data(flags=0x80), "flags"),
        (_data() + bytes(wire.MAX_PACKET), "long"),
    ],
)
def test_malformed_data_packets_name_their_fault(packet, reason):
    with pytest.raises(wire.MalformedPacket) as info:
        wire.packet_type(packet)
        wire.decode_data(packet)
    assert info.value.reason == reason


def test_announce_with_lying_count_is_rejected():
    a = wire.Announce(3, bytes(16), 1, 0, ((bytes(16), bytes(16)),)).encode()
    with pytest.raises(wire.MalformedPacket) as info:
        wire.decode_announce(a + bytes(32 * 2)[:31])
    assert info.value.reason == "length"


def test_aad_ignores_hop_limit_but_covers_everything_else():
    p = _data(hop_limit=9)
    assert wire.aad_of(p) == wire.aad_of(wire.with_hop_limit(p, 3))
    changed = bytearray(p)
    changed[40] ^= 1
    assert wire.aad_of(bytes(changed)) != wire.aad_of(p)
