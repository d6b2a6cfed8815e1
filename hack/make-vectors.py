"""Write tests/data/peertap-vectors.json: test vectors for a second implementation.

    .venv/bin/python -P hack/make-vectors.py [--out tests/data/peertap-vectors.json]

From fixed inputs (key seeds, labels, times, secrets) it records what this
implementation produces for: the member credential (canonical payload, signed bytes,
document), the frame key schedule of a private VLAN (MLS exporter -> frame key ->
MLS-ID, VFT salt, tokens, sender key, one sealed DATA packet), sender-bound frames
(pair key and tag), a revocation list, the credential digest of small HELLOs and a
bundle of two frames in one DATA packet.
tests/unit/test_peertap_vectors.py recomputes every output from the inputs with the
implementation (and the digests also from their documented formulas) and compares.
Regenerate only when a format changes on purpose (and say so in docs/protocol.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peertap.sidecar import bundle, ids, vft, wire
from peertap.sidecar.crypto import senders
from peertap.sidecar.crypto.keys import EpochKeys
from peertap.sidecar.crypto.mls_keys import FRAME_KEY_LABEL, FRAME_KEY_LEN
from peertap.sidecar.identity import Identity
from peertap.sidecar.mls.key_schedule import mls_exporter
from peertap.sidecar.mls.suites import get_suite
from peertap.sidecar.private import authority, credential_book, revocation

ROOT = Path(__file__).resolve().parents[1]


def ident(seed_byte: int) -> Identity:
    return Identity(Ed25519PrivateKey.from_private_bytes(bytes([seed_byte]) * 32))


def credential_vector() -> dict[str, object]:
    auth, member = ident(1), ident(2)
    label = "lab"
    name = 'ns/pod-\u00e9\u2603\U0001f600 "q" \\ /\t\x7f'
    issued = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    expires = dt.datetime(2026, 1, 2, 9, 4, 5, tzinfo=dt.UTC)
    cred = authority.issue(
        authority=auth,
        member_identity=name,
        member_key=member.public_bytes,
        vlan_id=ids.vlan_id(auth.public_bytes, label),
        issued=issued,
        expires=expires,
    )
    payload = authority.canonical(cred.payload())
    return {
        "authority_seed": auth.seed.hex(),
        "member_seed": member.seed.hex(),
        "label": label,
        "identity": name,
        "issued_unix": int(issued.timestamp()),
        "expires_unix": int(expires.timestamp()),
        "authority_public": auth.public_bytes.hex(),
        "member_public": member.public_bytes.hex(),
        "vlan_id": cred.vlan_id.hex(),
        "canonical_payload": payload.decode("ascii"),
        "signed_bytes": (authority.CONTEXT + payload).hex(),
        "signature": cred.signature.hex(),
        "document": cred.encode().decode("ascii"),
    }


def frame_vector() -> dict[str, object]:
    suite = get_suite(1)
    creator = ident(1)
    vlan_id = ids.vlan_id(creator.public_bytes, "lab")
    exporter_secret = bytes(range(32))
    frame_key = mls_exporter(suite, exporter_secret, FRAME_KEY_LABEL, vlan_id, FRAME_KEY_LEN)
    epoch = EpochKeys(epoch=7, frame_key=frame_key)
    a, b = ident(3), ident(4)
    mac_a = ids.member_mac(a.public_bytes, vlan_id, bytes(16))
    mac_b = ids.member_mac(b.public_bytes, vlan_id, bytes(16))
    sender = senders.sender_id(0)
    counter = 1_767_323_045_000_000
    plaintext = bytes(10) + mac_b + mac_a + b"\x08\x00" + b"hello, vlan"
    token = vft.unicast(mac_b, vlan_id, epoch.vft_salt)
    header = wire.DataHeader(
        16, wire.FLAG_SENDER_TAGS, vlan_id, epoch.mls_id, token, sender, counter
    ).encode()
    aad = wire.aad_of(header)
    nonce = bytes(4) + counter.to_bytes(8, "big")
    sealed = epoch.sender_aead(sender).encrypt(nonce, plaintext, aad)
    pairing = senders.Pairing(a.seed, a.public_bytes)
    dh = pairing.shared(b.public_bytes)
    assert dh is not None
    pair = senders.pair_key(frame_key, dh, a.public_bytes, b.public_bytes)
    h = senders.digest(aad, sealed)
    binding = senders.Binding(
        frame_key=frame_key,
        own_leaf=0,
        members={0: a.public_bytes, 1: b.public_bytes},
        pairing=pairing,
        macs=senders.MacBook(vlan_id),
    )
    trailer = binding.trailer(h, [1])
    # The same frame as a pairwise packet (how a unicast frame to b is really sent).
    pair_frame_key = blake3.blake3(senders.PAIR_FRAME_LABEL + sender, key=pair).digest()
    pairwise = binding.pair_aead(1, 0)
    assert pairwise is not None
    pair_sealed = pairwise.encrypt(nonce, plaintext, aad)
    return {
        "cipher_suite": 1,
        "creator_seed": creator.seed.hex(),
        "label": "lab",
        "vlan_id": vlan_id.hex(),
        "exporter_secret": exporter_secret.hex(),
        "exporter_label": FRAME_KEY_LABEL,
        "frame_key": frame_key.hex(),
        "mls_id": epoch.mls_id.hex(),
        "vft_salt": epoch.vft_salt.hex(),
        "broadcast_vft": vft.broadcast(vlan_id, epoch.vft_salt).hex(),
        "member_a_seed": a.seed.hex(),
        "member_b_seed": b.seed.hex(),
        "mac_a": mac_a.hex(),
        "mac_b": mac_b.hex(),
        "unicast_vft_b": token.hex(),
        "sender_id": sender.hex(),
        "sender_key": _sender_key(frame_key, sender).hex(),
        "counter": counter,
        "hop_limit": 16,
        "plaintext": plaintext.hex(),
        "header": header.hex(),
        "aad": aad.hex(),
        "nonce": nonce.hex(),
        "ciphertext": sealed.hex(),
        "x25519_shared": dh.hex(),
        "pair_key": pair.hex(),
        "digest": h.hex(),
        "trailer_for_b": trailer.hex(),
        "packet": (header + sealed + trailer).hex(),
        "pair_frame_key": pair_frame_key.hex(),
        "pairwise_packet": (header + pair_sealed + senders.PAIRWISE).hex(),
    }


def _sender_key(frame_key: bytes, sender: bytes) -> bytes:
    return blake3.blake3(b"peertap/v1 sender key" + sender, key=frame_key).digest(32)


def revocation_vector() -> dict[str, object]:
    auth = ident(1)
    keys = [ident(4).public_bytes, ident(2).public_bytes]
    data = revocation.sign_revocation_list(auth, "lab", keys, 3)
    return {
        "authority_seed": auth.seed.hex(),
        "label": "lab",
        "version": 3,
        "revoked": sorted(k.hex() for k in keys),
        "list": data.hex(),
    }


def credential_digest_vector(cred: dict[str, object]) -> dict[str, object]:
    """The digest that names the `credential` vector's document in small HELLOs signed by
    its member's key (docs/protocol.md, 10.2)."""
    signer = bytes.fromhex(str(cred["member_public"]))
    document = str(cred["document"]).encode("ascii")
    return {
        "signer_public": signer.hex(),
        "document": document.decode("ascii"),
        "hashed": (b"peertap credential digest\x00" + signer + document).hex(),
        "digest": credential_book.digest(signer, document).hex(),
    }


def bundle_vector(frame: dict[str, object]) -> dict[str, object]:
    """Two small frames from a to b sealed as one bundle (flag BUNDLE, docs/protocol.md,
    4.5), under the `frame` vector's keys, as an open VLAN's sender key seals them."""
    frame_key = bytes.fromhex(str(frame["frame_key"]))
    epoch = EpochKeys(epoch=7, frame_key=frame_key)
    mac_a, mac_b = bytes.fromhex(str(frame["mac_a"])), bytes.fromhex(str(frame["mac_b"]))
    units = [bytes(10) + mac_b + mac_a + b"\x08\x00" + text for text in (b"one", b"two!")]
    plaintext = bundle.join(units)
    sender = bytes(range(8))
    counter = 1_767_323_045_000_001
    vlan_id = bytes.fromhex(str(frame["vlan_id"]))
    token = bytes.fromhex(str(frame["unicast_vft_b"]))
    header = wire.DataHeader(
        16, wire.FLAG_BUNDLE, vlan_id, epoch.mls_id, token, sender, counter
    ).encode()
    nonce = bytes(4) + counter.to_bytes(8, "big")
    sealed = epoch.sender_aead(sender).encrypt(nonce, plaintext, wire.aad_of(header))
    return {
        "units": [u.hex() for u in units],
        "plaintext": plaintext.hex(),
        "sender_id": sender.hex(),
        "counter": counter,
        "packet": (header + sealed).hex(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default=str(ROOT / "tests" / "data" / "peertap-vectors.json"))
    args = p.parse_args()
    cred = credential_vector()
    frame = frame_vector()
    doc = {
        "credential": cred,
        "frame": frame,
        "revocation": revocation_vector(),
        "credential_digest": credential_digest_vector(cred),
        "bundle": bundle_vector(frame),
    }
    Path(args.out).write_text(json.dumps(doc, indent=2, ensure_ascii=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
