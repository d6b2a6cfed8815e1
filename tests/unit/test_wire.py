"""Wire codec: DATA and ANNOUNCE round trips, malformed input is rejected with a reason."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peertap.sidecar import wire

b16 = st.binary(min_size=16, max_size=16)
b8 = st.binary(min_size=8, max_size=8)
b32 = st.binary(min_size=32, max_size=32)


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
    origin=b32,
    vid=b16,
    seq=st.integers(0, 2**64 - 1),
    dist=st.integers(0, 255),
    tokens=st.lists(b16, max_size=40),
    sig=st.binary(min_size=64, max_size=64),
)
def test_announce_round_trips(hop, origin, vid, seq, dist, tokens, sig):
    a = wire.Announce(hop, origin, vid, seq, dist, tuple(tokens), sig)
    assert wire.decode_announce(a.encode()) == a


@given(
    hop=st.integers(1, 255),
    stamp=st.integers(0, 2**64 - 1),
    vid=b16,
    kind=st.integers(0, 255),
    signer=b32,
    body=st.binary(max_size=100),
    sig=st.binary(min_size=64, max_size=64),
)
def test_control_round_trips(hop, stamp, vid, kind, signer, body, sig):
    c = wire.Control(hop, stamp, vid, kind, signer, body, sig)
    assert wire.decode_control(c.encode()) == c


@given(
    lowest=st.integers(1, 255),
    roles=st.integers(0, 255),
    creds=st.lists(st.binary(min_size=1, max_size=300), max_size=wire.MAX_INTRO_CREDENTIALS),
)
def test_intro_round_trips(lowest, roles, creds):
    i = wire.Intro(lowest, 255, roles, tuple(creds))
    assert wire.decode_intro(i.encode()) == i


@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_raise_anything_but_malformed(data):
    try:
        t = wire.packet_type(data)
        decode = {
            wire.TYPE_DATA: wire.decode_data,
            wire.TYPE_ANNOUNCE: wire.decode_announce,
            wire.TYPE_CONTROL: wire.decode_control,
            wire.TYPE_INTRO: wire.decode_intro,
        }[t]
        decode(data)
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
        (b"\x01\x01\x05\x00" + bytes(80), "version"),
        (b"\x02\x01\x05\x00" + bytes(80), "version"),  # a version 2 DATA packet
        (bytes([wire.VERSION, 9, 5, 0]) + bytes(80), "type"),
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
    a = wire.Announce(3, bytes(32), bytes(16), 1, 0, (bytes(16),)).encode()
    with pytest.raises(wire.MalformedPacket) as info:
        wire.decode_announce(a + bytes(15))
    assert info.value.reason == "length"


@pytest.mark.parametrize(
    "packet",
    [
        wire.Intro(credentials=(b"x" * 5,)).encode()[:-1],
        wire.Intro(credentials=(b"x" * 5,)).encode() + b"\x00",
        wire.Intro().encode()[:7] + b"\x09",
        wire.Intro(2, 1).encode(),
    ],
)
def test_malformed_intros_are_rejected(packet):
    with pytest.raises(wire.MalformedPacket):
        wire.decode_intro(packet)


def test_aad_ignores_hop_limit_but_covers_everything_else():
    p = _data(hop_limit=9)
    assert wire.aad_of(p) == wire.aad_of(wire.with_hop_limit(p, 3))
    changed = bytearray(p)
    changed[40] ^= 1
    assert wire.aad_of(bytes(changed)) != wire.aad_of(p)
