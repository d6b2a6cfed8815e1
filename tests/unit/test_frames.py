"""Frame sealing: members of a VLAN open each other's packets; tampering, replays,
other VLANs' keys and unknown epochs are refused with a reason."""

import pytest

from peertap.sidecar import wire
from peertap.sidecar.crypto.frames import FrameOpener, FrameSealer, OpenError
from peertap.sidecar.crypto.keys import PublicKeyProvider

VID = bytes(range(16))
CREATOR = bytes(range(32))


def _seal(sealer, body=b"hello frame", **kw):
    return sealer.seal(vft=b"t" * 16, plaintext=body, hop_limit=8, **kw)


def test_a_member_opens_what_another_sealed():
    s = FrameSealer(VID, PublicKeyProvider(CREATOR, "lab"))
    o = FrameOpener(PublicKeyProvider(CREATOR, "lab"))
    p = _seal(s)
    assert o.open(p, wire.decode_data(p)) == b"hello frame"


def test_ciphertext_does_not_contain_the_plaintext():
    s = FrameSealer(VID, PublicKeyProvider(CREATOR, "lab"))
    marker = b"PLAINTEXT-MARKER-1234567890"
    assert marker not in _seal(s, marker * 4)


def test_relay_hop_limit_change_keeps_the_packet_valid():
    s = FrameSealer(VID, PublicKeyProvider(CREATOR, "lab"))
    o = FrameOpener(PublicKeyProvider(CREATOR, "lab"))
    p = wire.with_hop_limit(_seal(s), 2)
    assert o.open(p, wire.decode_data(p)) == b"hello frame"


@pytest.mark.parametrize("offset", [4, 20, 36, 52, 60, 70, -1])
def test_any_flipped_bit_is_an_auth_failure(offset):
    s = FrameSealer(VID, PublicKeyProvider(CREATOR, "lab"))
    o = FrameOpener(PublicKeyProvider(CREATOR, "lab"))
    p = bytearray(_seal(s))
    p[offset] ^= 0x01
    with pytest.raises(OpenError) as info:
        o.open(bytes(p), wire.decode_data(bytes(p)))
    assert info.value.reason in ("auth", "unknown_epoch")


def test_replayed_packet_is_refused():
    s = FrameSealer(VID, PublicKeyProvider(CREATOR, "lab"))
    o = FrameOpener(PublicKeyProvider(CREATOR, "lab"))
    p = _seal(s)
    o.open(p, wire.decode_data(p))
    with pytest.raises(OpenError) as info:
        o.open(p, wire.decode_data(p))
    assert info.value.reason == "replay"


def test_another_vlans_key_cannot_open():
    s = FrameSealer(VID, PublicKeyProvider(CREATOR, "other"))
    o = FrameOpener(PublicKeyProvider(CREATOR, "lab"))
    p = _seal(s)
    with pytest.raises(OpenError) as info:
        o.open(p, wire.decode_data(p))
    assert info.value.reason == "unknown_epoch"


def test_senders_have_distinct_keys():
    k = PublicKeyProvider(CREATOR, "lab").current()
    a, b = FrameSealer(VID, PublicKeyProvider(CREATOR, "lab")), FrameSealer(VID, PublicKeyProvider(CREATOR, "lab"))
    assert a.sender != b.sender
    # Same counter, same plaintext, different senders: different ciphertexts.
    assert _seal(a)[68:] != _seal(b)[68:]
    assert k.mls_id != k.frame_key[:16]
