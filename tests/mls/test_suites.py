"""Cipher suites: parameters, labeled crypto, HPKE paths, failures as typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from peertap.sidecar.mls import hpke
from peertap.sidecar.mls.errors import DecryptError, UnsupportedError, ValidationError
from peertap.sidecar.mls.suites import SUITE_IDS, CipherSuite, get_suite

VECTORS = Path(__file__).resolve().parents[1] / "data" / "mls-vectors"

EXPECTED_LENGTHS = {  # suite: (nh, nk, nn, hpke public key size)
    1: (32, 16, 12, 32),
    2: (32, 16, 12, 65),
    3: (32, 32, 12, 32),
    4: (64, 32, 12, 56),
    5: (64, 32, 12, 133),
    6: (64, 32, 12, 56),
    7: (48, 32, 12, 97),
}


@pytest.fixture(params=SUITE_IDS, ids=lambda i: f"suite{i}")
def suite(request: pytest.FixtureRequest) -> CipherSuite:
    return get_suite(request.param)


def _crypto_basics(suite_id: int) -> dict:  # type: ignore[type-arg]
    cases = json.loads((VECTORS / "crypto-basics.json").read_text())
    return next(c for c in cases if c["cipher_suite"] == suite_id)


def test_all_seven_suites_are_supported() -> None:
    assert SUITE_IDS == (1, 2, 3, 4, 5, 6, 7)


@pytest.mark.parametrize("suite_id", [0x0000, 0x0008, 0x0A0A, 0xFFFF])
def test_unknown_suite_raises_unsupported(suite_id: int) -> None:
    with pytest.raises(UnsupportedError):
        get_suite(suite_id)


def test_suite_lengths_match_rfc(suite: CipherSuite) -> None:
    nh, nk, nn, npk = EXPECTED_LENGTHS[suite.id]
    assert (suite.nh, suite.nk, suite.nn) == (nh, nk, nn)
    assert len(suite.hash(b"")) == nh
    assert len(suite.derive_secret(bytes(nh), "x")) == nh
    assert len(suite.derive_key_pair(b"ikm")[1]) == npk


def test_derive_key_pair_is_deterministic_and_consistent(suite: CipherSuite) -> None:
    priv, pub = suite.derive_key_pair(b"path secret")
    assert suite.derive_key_pair(b"path secret") == (priv, pub)
    assert suite.derive_key_pair(b"other secret") != (priv, pub)
    assert suite.hpke_public_from_private(priv) == pub
    assert len(priv) == suite.kem.nsk


def test_sign_and_verify_round_trip(suite: CipherSuite) -> None:
    priv, pub = suite.generate_signature_key_pair()
    assert suite.signature_public_from_private(priv) == pub
    sig = suite.sign_with_label(priv, "LeafNodeTBS", b"content")
    assert suite.verify_with_label(pub, "LeafNodeTBS", b"content", sig)


def test_verify_rejects_tampering_without_raising(suite: CipherSuite) -> None:
    priv, pub = suite.generate_signature_key_pair()
    sig = suite.sign_with_label(priv, "LeafNodeTBS", b"content")
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    other_pub = suite.generate_signature_key_pair()[1]
    assert not suite.verify_with_label(pub, "LeafNodeTBS", b"content", flipped)
    assert not suite.verify_with_label(pub, "LeafNodeTBS", b"contenT", sig)
    assert not suite.verify_with_label(pub, "KeyPackageTBS", b"content", sig)
    assert not suite.verify_with_label(other_pub, "LeafNodeTBS", b"content", sig)
    assert not suite.verify_with_label(b"\x04garbage", "LeafNodeTBS", b"content", sig)
    assert not suite.verify_with_label(pub, "LeafNodeTBS", b"content", b"")


def test_a_remembered_good_signature_never_vouches_for_a_tampered_one(suite: CipherSuite) -> None:
    priv, pub = suite.generate_signature_key_pair()
    sig = suite.sign_with_label(priv, "LeafNodeTBS", b"content")
    # Verified twice: the second answer comes from what the first remembered ...
    assert suite.verify_with_label(pub, "LeafNodeTBS", b"content", sig)
    assert suite.verify_with_label(pub, "LeafNodeTBS", b"content", sig)
    # ... and nothing that differs in any input is taken for it.
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    other_pub = suite.generate_signature_key_pair()[1]
    assert not suite.verify_with_label(pub, "LeafNodeTBS", b"content", flipped)
    assert not suite.verify_with_label(pub, "LeafNodeTBS", b"contenT", sig)
    assert not suite.verify_with_label(other_pub, "LeafNodeTBS", b"content", sig)
    # Moving bytes between key and signature does not alias either.
    assert not suite.signature.verify(pub + sig[:1], b"x", sig[1:])


def test_aead_round_trip_and_tampered_ciphertext_raises_decrypt_error(suite: CipherSuite) -> None:
    key, nonce = bytes(range(suite.nk)), bytes(suite.nn)
    ct = suite.aead_seal(key, nonce, b"aad", b"frame")
    assert suite.aead_open(key, nonce, b"aad", ct) == b"frame"
    with pytest.raises(DecryptError):
        suite.aead_open(key, nonce, b"aad", ct[:-1] + bytes([ct[-1] ^ 1]))
    with pytest.raises(DecryptError):
        suite.aead_open(key, nonce, b"aaD", ct)


def test_encrypt_with_label_round_trip_and_tampering(suite: CipherSuite) -> None:
    priv, pub = suite.generate_hpke_key_pair()
    kem_output, ct = suite.encrypt_with_label(pub, "UpdatePathNode", b"ctx", b"path secret")
    assert (
        suite.decrypt_with_label(priv, "UpdatePathNode", b"ctx", kem_output, ct) == b"path secret"
    )
    with pytest.raises(DecryptError):
        suite.decrypt_with_label(
            priv, "UpdatePathNode", b"ctx", kem_output, ct[:-1] + bytes([ct[-1] ^ 1])
        )
    with pytest.raises(DecryptError):
        suite.decrypt_with_label(priv, "UpdatePathNode", b"other", kem_output, ct)
    with pytest.raises(DecryptError):
        suite.decrypt_with_label(priv, "UpdatePathNode", b"ctx", kem_output[:-1], ct)
    wrong_priv = suite.generate_hpke_key_pair()[0]
    with pytest.raises(DecryptError):
        suite.decrypt_with_label(wrong_priv, "UpdatePathNode", b"ctx", kem_output, ct)


def test_hpke_with_aad_uses_the_python_path(suite: CipherSuite) -> None:
    priv, pub = suite.generate_hpke_key_pair()
    enc, ct = suite.hpke_seal(pub, b"info", b"aad", b"pt")
    assert suite.hpke_open(priv, enc, b"info", b"aad", ct) == b"pt"
    with pytest.raises(DecryptError):
        suite.hpke_open(priv, enc, b"info", b"", ct)


def test_python_hpke_matches_vectors_and_interoperates(suite: CipherSuite) -> None:
    vector = _crypto_basics(suite.id)["encrypt_with_label"]
    priv, pub = bytes.fromhex(vector["priv"]), bytes.fromhex(vector["pub"])
    python_only = hpke.HPKE(suite.kem, suite.kdf, suite.aead, use_rust=False)
    enc, ct = python_only.seal(pub, b"info", b"", b"plaintext")
    assert suite.hpke_open(priv, enc, b"info", b"", ct) == b"plaintext"
    enc, ct = suite.hpke_seal(pub, b"info", b"", b"plaintext")
    assert python_only.open(priv, enc, b"info", b"", ct) == b"plaintext"


def test_encrypting_to_a_malformed_public_key_is_a_validation_error(suite: CipherSuite) -> None:
    pub = suite.generate_hpke_key_pair()[1]
    with pytest.raises(ValidationError):
        suite.encrypt_with_label(pub[:-1], "x", b"", b"pt")


def test_signature_keys_from_vectors_use_raw_formats(suite: CipherSuite) -> None:
    vector = _crypto_basics(suite.id)["sign_with_label"]
    priv = bytes.fromhex(vector["priv"])
    assert suite.signature_public_from_private(priv).hex() == vector["pub"]


def test_references_use_their_rfc_labels(suite: CipherSuite) -> None:
    value = b"encoded object"
    assert suite.make_key_package_ref(value) == suite.ref_hash(
        "MLS 1.0 KeyPackage Reference", value
    )
    assert suite.make_proposal_ref(value) == suite.ref_hash("MLS 1.0 Proposal Reference", value)
    assert suite.make_key_package_ref(value) != suite.make_proposal_ref(value)


def test_mac_verification(suite: CipherSuite) -> None:
    tag = suite.mac(b"key", b"data")
    assert suite.verify_mac(b"key", b"data", tag)
    assert not suite.verify_mac(b"key", b"datA", tag)


@pytest.mark.parametrize("kem", [hpke.DHKEM_P256, hpke.DHKEM_P384, hpke.DHKEM_P521])
def test_nist_curve_orders_used_by_derive_key_pair_are_exact(kem: hpke.DHKEM) -> None:
    # (order - 1) * G == -G: same x, other y. A wrong order fails or lands elsewhere.
    assert kem.curve is not None
    g = ec.derive_private_key(1, kem.curve).public_key().public_numbers()
    minus_g = ec.derive_private_key(kem.order - 1, kem.curve).public_key().public_numbers()
    assert minus_g.x == g.x
    assert minus_g.y != g.y
