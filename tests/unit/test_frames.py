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
    a, b = (
        FrameSealer(VID, PublicKeyProvider(CREATOR, "lab")),
        FrameSealer(VID, PublicKeyProvider(CREATOR, "lab")),
    )
    assert a.sender != b.sender
    # Same counter, same plaintext, different senders: different ciphertexts.
    assert _seal(a)[68:] != _seal(b)[68:]
    assert k.mls_id != k.frame_key[:16]


def test_flushing_the_replay_windows_never_reopens_a_replay():
    """A key holder creating many senders evicts old windows; the floor still refuses."""
    keys = PublicKeyProvider(CREATOR, "lab")
    o = FrameOpener(keys, max_windows=4)
    victim = FrameSealer(VID, keys)
    old = _seal(victim)
    o.open(old, wire.decode_data(old))
    for _ in range(10):
        p = _seal(FrameSealer(VID, keys))
        o.open(p, wire.decode_data(p))
    with pytest.raises(OpenError) as info:
        o.open(old, wire.decode_data(old))
    assert info.value.reason == "replay"
    # The victim's next frame, and a brand-new sender, still open.
    new = _seal(victim)
    assert o.open(new, wire.decode_data(new)) == b"hello frame"
    fresh = _seal(FrameSealer(VID, keys))
    assert o.open(fresh, wire.decode_data(fresh)) == b"hello frame"


def test_counters_keep_increasing_across_a_restart_of_the_sender():
    a = FrameSealer(VID, PublicKeyProvider(CREATOR, "lab"))
    first = wire.decode_data(_seal(a)).counter
    b = FrameSealer(VID, PublicKeyProvider(CREATOR, "lab"))
    assert wire.decode_data(_seal(b)).counter > first
