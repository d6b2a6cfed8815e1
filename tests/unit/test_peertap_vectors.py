"""The implementation against tests/data/peertap-vectors.json, the vectors a second
implementation checks itself with (docs/protocol.md, "Test vectors")."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import blake3
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from peertap.sidecar import bundle, ids, vft, wire
from peertap.sidecar.crypto import senders
from peertap.sidecar.crypto.frames import FrameOpener
from peertap.sidecar.crypto.keys import EpochKeys
from peertap.sidecar.crypto.mls_keys import MlsKeyProvider
from peertap.sidecar.identity import Identity
from peertap.sidecar.mls.key_schedule import mls_exporter
from peertap.sidecar.mls.suites import get_suite
from peertap.sidecar.private import authority, credential_book, revocation

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "peertap-vectors.json").read_text())


def ident(seed_hex: str) -> Identity:
    return Identity(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex)))


@pytest.fixture
def cred() -> dict[str, Any]:
    v: dict[str, Any] = VECTORS["credential"]
    return v


@pytest.fixture
def frame() -> dict[str, Any]:
    v: dict[str, Any] = VECTORS["frame"]
    return v


def test_credential_canonical_bytes_signature_and_document(cred: dict[str, Any]) -> None:
    auth, member = ident(cred["authority_seed"]), ident(cred["member_seed"])
    assert auth.public_bytes.hex() == cred["authority_public"]
    vid = ids.vlan_id(auth.public_bytes, cred["label"])
    assert vid.hex() == cred["vlan_id"]
    issued = authority.issue(
        authority=auth,
        member_identity=cred["identity"],
        member_key=member.public_bytes,
        vlan_id=vid,
        issued=dt.datetime.fromtimestamp(cred["issued_unix"], dt.UTC),
        expires=dt.datetime.fromtimestamp(cred["expires_unix"], dt.UTC),
    )
    payload = authority.canonical(issued.payload())
    assert payload == cred["canonical_payload"].encode("ascii")
    signed = bytes.fromhex(cred["signed_bytes"])
    assert signed == b"peertap-credential-v1\x00" + payload
    assert issued.signature.hex() == cred["signature"]
    Ed25519PublicKey.from_public_bytes(auth.public_bytes).verify(issued.signature, signed)
    assert issued.encode() == cred["document"].encode("ascii")
    # The document the vector gives verifies, with its trailing newline as files hold it.
    ok = authority.verify(
        cred["document"] + "\n",
        authority=auth.public_bytes,
        vlan_id=vid,
        now=dt.datetime.fromtimestamp(cred["issued_unix"] + 60, dt.UTC),
        member_key=member.public_bytes,
    )
    assert ok.identity == cred["identity"]


def test_frame_key_schedule(frame: dict[str, Any]) -> None:
    creator = ident(frame["creator_seed"])
    vid = ids.vlan_id(creator.public_bytes, frame["label"])
    assert vid.hex() == frame["vlan_id"]
    key = mls_exporter(
        get_suite(frame["cipher_suite"]),
        bytes.fromhex(frame["exporter_secret"]),
        frame["exporter_label"],
        vid,
        32,
    )
    assert key.hex() == frame["frame_key"]
    epoch = EpochKeys(epoch=1, frame_key=key)
    assert epoch.mls_id.hex() == frame["mls_id"]
    assert epoch.vft_salt.hex() == frame["vft_salt"]
    assert vft.broadcast(vid, epoch.vft_salt).hex() == frame["broadcast_vft"]
    a, b = ident(frame["member_a_seed"]), ident(frame["member_b_seed"])
    mac_b = ids.member_mac(b.public_bytes, vid, bytes(16))
    assert ids.member_mac(a.public_bytes, vid, bytes(16)).hex() == frame["mac_a"]
    assert mac_b.hex() == frame["mac_b"]
    assert vft.unicast(mac_b, vid, epoch.vft_salt).hex() == frame["unicast_vft_b"]
    sender = bytes.fromhex(frame["sender_id"])
    sender_key = blake3.blake3(b"peertap/v1 sender key" + sender, key=key).digest(32)
    assert sender_key.hex() == frame["sender_key"]


def test_sealed_packet_and_its_sender_tag(frame: dict[str, Any]) -> None:
    key = bytes.fromhex(frame["frame_key"])
    a, b = ident(frame["member_a_seed"]), ident(frame["member_b_seed"])
    header = bytes.fromhex(frame["header"])
    h = wire.decode_data(header + bytes(16))
    assert (h.hop_limit, h.flags, h.counter) == (
        frame["hop_limit"],
        wire.FLAG_SENDER_TAGS,
        frame["counter"],
    )
    assert wire.aad_of(header).hex() == frame["aad"]
    epoch = EpochKeys(epoch=1, frame_key=key)
    sealed = epoch.sender_aead(h.sender).encrypt(
        bytes.fromhex(frame["nonce"]), bytes.fromhex(frame["plaintext"]), wire.aad_of(header)
    )
    assert sealed.hex() == frame["ciphertext"]
    dh = senders.Pairing(b.seed, b.public_bytes).shared(a.public_bytes)
    assert dh is not None and dh.hex() == frame["x25519_shared"]
    assert senders.pair_key(key, dh, b.public_bytes, a.public_bytes).hex() == frame["pair_key"]
    assert senders.digest(wire.aad_of(header), sealed).hex() == frame["digest"]
    # b, leaf 1, opens the whole packet of a, leaf 0.
    keys = MlsKeyProvider(
        vlan_id=h.vlan_id, grace_s=10, pairing=senders.Pairing(b.seed, b.public_bytes)
    )
    keys.install(epoch=1, frame_key=key, own_leaf=1, members={0: a.public_bytes, 1: b.public_bytes})
    packet = bytes.fromhex(frame["packet"])
    assert packet.endswith(bytes.fromhex(frame["trailer_for_b"]))
    opener = FrameOpener(keys)
    assert opener.open(packet, wire.decode_data(packet)).hex() == frame["plaintext"]
    assert opener.sender_leaf == 0
    # The pairwise form: AES-256-GCM under the pair frame key, a zero-count trailer.
    pair_frame_key = blake3.blake3(
        b"peertap/v2 pair frame key" + h.sender, key=bytes.fromhex(frame["pair_key"])
    ).digest()
    assert pair_frame_key.hex() == frame["pair_frame_key"]
    pairwise = bytes.fromhex(frame["pairwise_packet"])
    assert pairwise.endswith(b"\x00\x00")
    assert AESGCM(pair_frame_key).decrypt(
        bytes.fromhex(frame["nonce"]), pairwise[68:-2], wire.aad_of(header)
    ) == bytes.fromhex(frame["plaintext"])
    # b's replay window took the first packet's counter: a fresh opener takes this one.
    assert FrameOpener(keys).open(pairwise, wire.decode_data(pairwise)).hex() == frame["plaintext"]


def test_revocation_list() -> None:
    v = VECTORS["revocation"]
    auth = ident(v["authority_seed"])
    keys = [bytes.fromhex(k) for k in v["revoked"]]
    data = revocation.sign_revocation_list(auth, v["label"], keys, v["version"])
    assert data.hex() == v["list"]
    lst = revocation.load_revocation_list(data, auth.public_bytes, v["label"])
    assert lst.version == v["version"] and lst.revoked == frozenset(keys)


def test_credential_digest_of_small_hellos(cred: dict[str, Any]) -> None:
    v = VECTORS["credential_digest"]
    # It names the credential vector's document, signed by that credential's member.
    assert v["signer_public"] == cred["member_public"]
    assert v["document"] == cred["document"]
    signer = bytes.fromhex(v["signer_public"])
    document = v["document"].encode("ascii")
    # From the formula of docs/protocol.md 10.2: BLAKE3-128 of the 25-byte label, a zero
    # byte, the 32-byte signer key and the document.
    hashed = b"peertap credential digest" + b"\x00" + signer + document
    assert len(hashed) == 25 + 1 + 32 + len(document)
    assert hashed.hex() == v["hashed"]
    assert blake3.blake3(hashed).digest()[:16].hex() == v["digest"]
    # And the implementation agrees, bound to the signer: another key gives another digest.
    assert credential_book.digest(signer, document).hex() == v["digest"]
    other = bytes.fromhex(cred["authority_public"])
    assert credential_book.digest(other, document).hex() != v["digest"]


def test_a_bundle_of_two_frames(frame: dict[str, Any]) -> None:
    """Its plaintext is each unit with its u16 length, and it opens under the sender key
    like any DATA packet (flag BUNDLE); the units come back in order."""
    v: dict[str, Any] = VECTORS["bundle"]
    units = [bytes.fromhex(u) for u in v["units"]]
    expected = b"".join(len(u).to_bytes(2, "big") + u for u in units)
    assert expected.hex() == v["plaintext"] == bundle.join(units).hex()
    packet = bytes.fromhex(v["packet"])
    h = wire.decode_data(packet)
    assert h.flags == wire.FLAG_BUNDLE and h.counter == v["counter"]
    assert h.sender.hex() == v["sender_id"]
    sender_key = blake3.blake3(
        b"peertap/v1 sender key" + h.sender, key=bytes.fromhex(frame["frame_key"])
    ).digest()
    nonce = bytes(4) + h.counter.to_bytes(8, "big")
    plaintext = AESGCM(sender_key).decrypt(nonce, packet[68:], wire.aad_of(packet))
    assert plaintext.hex() == v["plaintext"]
    assert bundle.split(plaintext) == units
