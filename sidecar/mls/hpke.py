"""HPKE base mode (RFC 9180) with the five DHKEMs MLS uses.

Keys cross this module's boundary as bytes in the RFC 9180 serialization
(``SerializePublicKey`` / ``SerializePrivateKey``): raw X25519/X448 keys, and
uncompressed points / big-endian scalars for the NIST curves. That is also how
the MLS test vectors carry them.

``cryptography`` provides the DH and AEAD primitives and, for the KEMs it
supports (X25519, P-256, P-384, P-521), the whole seal/open in Rust when the
AAD is empty (always so in MLS). DHKEM is implemented here as well because
``cryptography`` has no X448 HPKE and no ``DeriveKeyPair``, which TreeKEM needs
to turn path secrets into key pairs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives import hpke as chpke
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import DecryptError, ValidationError

__all__ = ["AEAD", "DHKEM", "HPKE", "KDF"]

_VERSION = b"HPKE-v1"
_MODE_BASE = b"\x00"


@dataclass(frozen=True, slots=True)
class KDF:
    """HKDF with one hash function (RFC 5869)."""

    kdf_id: int
    algorithm: type[hashes.HashAlgorithm]
    nh: int

    def extract(self, salt: bytes, ikm: bytes) -> bytes:
        mac = hmac.HMAC(salt or bytes(self.nh), self.algorithm())
        mac.update(ikm)
        return mac.finalize()

    def expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        return HKDFExpand(self.algorithm(), length, info).derive(prk)

    def labeled_extract(self, suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return self.extract(salt, _VERSION + suite_id + label + ikm)

    def labeled_expand(
        self, suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int
    ) -> bytes:
        labeled_info = length.to_bytes(2, "big") + _VERSION + suite_id + label + info
        return self.expand(prk, labeled_info, length)


HKDF_SHA256 = KDF(0x0001, hashes.SHA256, 32)
HKDF_SHA384 = KDF(0x0002, hashes.SHA384, 48)
HKDF_SHA512 = KDF(0x0003, hashes.SHA512, 64)


@dataclass(frozen=True, slots=True)
class AEAD:
    """An AEAD algorithm: ``nk`` key bytes, ``nn`` nonce bytes, 16-byte tag."""

    aead_id: int
    nk: int
    nn: int
    cipher: type[AESGCM] | type[ChaCha20Poly1305]

    def seal(self, key: bytes, nonce: bytes, aad: bytes, pt: bytes) -> bytes:
        return self.cipher(key).encrypt(nonce, pt, aad)

    def open(self, key: bytes, nonce: bytes, aad: bytes, ct: bytes) -> bytes:
        try:
            return self.cipher(key).decrypt(nonce, ct, aad)
        except InvalidTag as err:
            raise DecryptError("AEAD authentication failed") from err


AES_128_GCM = AEAD(0x0001, 16, 12, AESGCM)
AES_256_GCM = AEAD(0x0002, 32, 12, AESGCM)
CHACHA20_POLY1305 = AEAD(0x0003, 32, 12, ChaCha20Poly1305)


_PrivateKey = x25519.X25519PrivateKey | x448.X448PrivateKey | ec.EllipticCurvePrivateKey
_PublicKey = x25519.X25519PublicKey | x448.X448PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class DHKEM:
    """DHKEM(Group, HKDF) of RFC 9180 section 4.1."""

    kem_id: int
    kdf: KDF
    nsecret: int
    nsk: int
    npk: int
    curve: ec.EllipticCurve | None = None  # None: X25519 / X448 (by nsk)
    order: int = 0  # NIST curves: group order, for DeriveKeyPair rejection sampling
    bitmask: int = 0xFF
    rust_kem: chpke.KEM | None = None  # the same KEM in cryptography's HPKE, if there

    @property
    def suite_id(self) -> bytes:
        return b"KEM" + self.kem_id.to_bytes(2, "big")

    # -- key (de)serialization -------------------------------------------------

    def load_private(self, sk: bytes) -> _PrivateKey:
        # NIST-curve scalars are big-endian integers; some producers drop leading
        # zero bytes (seen for P-521 in the MLS vectors), so shorter is accepted.
        size_ok = 0 < len(sk) <= self.nsk if self.curve is not None else len(sk) == self.nsk
        if not size_ok:
            raise ValidationError(f"HPKE private key must be {self.nsk} bytes, got {len(sk)}")
        try:
            if self.curve is not None:
                return ec.derive_private_key(int.from_bytes(sk, "big"), self.curve)
            if self.nsk == 32:
                return x25519.X25519PrivateKey.from_private_bytes(sk)
            return x448.X448PrivateKey.from_private_bytes(sk)
        except ValueError as err:
            raise ValidationError(f"invalid HPKE private key: {err}") from err

    def load_public(self, pk: bytes) -> _PublicKey:
        if len(pk) != self.npk:
            raise ValidationError(f"HPKE public key must be {self.npk} bytes, got {len(pk)}")
        try:
            if self.curve is not None:
                return ec.EllipticCurvePublicKey.from_encoded_point(self.curve, pk)
            if self.nsk == 32:
                return x25519.X25519PublicKey.from_public_bytes(pk)
            return x448.X448PublicKey.from_public_bytes(pk)
        except ValueError as err:
            raise ValidationError(f"invalid HPKE public key: {err}") from err

    def serialize_public(self, key: _PublicKey) -> bytes:
        if isinstance(key, ec.EllipticCurvePublicKey):
            return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return key.public_bytes_raw()

    def public_from_private(self, sk: bytes) -> bytes:
        return self.serialize_public(self.load_private(sk).public_key())

    # -- key generation --------------------------------------------------------

    def generate_key_pair(self) -> tuple[bytes, bytes]:
        """A fresh random key pair (serialized private, serialized public)."""
        return self.derive_key_pair(os.urandom(self.nsk))

    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """RFC 9180 DeriveKeyPair: (serialized private, serialized public)."""
        sid = self.suite_id
        dkp_prk = self.kdf.labeled_extract(sid, b"", b"dkp_prk", ikm)
        if self.curve is None:
            sk = self.kdf.labeled_expand(sid, dkp_prk, b"sk", b"", self.nsk)
            return sk, self.public_from_private(sk)
        for counter in range(256):
            candidate = bytearray(
                self.kdf.labeled_expand(sid, dkp_prk, b"candidate", bytes((counter,)), self.nsk)
            )
            candidate[0] &= self.bitmask
            scalar = int.from_bytes(candidate, "big")
            if 0 < scalar < self.order:
                sk = bytes(candidate)
                return sk, self.public_from_private(sk)
        raise ValidationError("DeriveKeyPair: no valid scalar in 256 candidates")

    # -- encapsulation ---------------------------------------------------------

    def _dh(self, sk: _PrivateKey, pk: _PublicKey) -> bytes:
        try:
            if isinstance(sk, ec.EllipticCurvePrivateKey):
                assert isinstance(pk, ec.EllipticCurvePublicKey)
                return sk.exchange(ec.ECDH(), pk)
            return sk.exchange(pk)  # type: ignore[arg-type]
        except ValueError as err:  # e.g. a small-order X25519/X448 point
            raise ValidationError(f"DH failed: {err}") from err

    def _extract_and_expand(self, dh: bytes, kem_context: bytes) -> bytes:
        sid = self.suite_id
        eae_prk = self.kdf.labeled_extract(sid, b"", b"eae_prk", dh)
        return self.kdf.labeled_expand(sid, eae_prk, b"shared_secret", kem_context, self.nsecret)

    def encap(self, pk_r: bytes, *, ikm_e: bytes | None = None) -> tuple[bytes, bytes]:
        """(shared_secret, enc). ``ikm_e`` fixes the ephemeral key (tests only)."""
        pk = self.load_public(pk_r)
        sk_e, enc = self.derive_key_pair(ikm_e) if ikm_e is not None else self.generate_key_pair()
        dh = self._dh(self.load_private(sk_e), pk)
        return self._extract_and_expand(dh, enc + pk_r), enc

    def decap(self, enc: bytes, sk_r: bytes) -> bytes:
        sk = self.load_private(sk_r)
        try:
            pk_e = self.load_public(enc)
            dh = self._dh(sk, pk_e)
        except ValidationError as err:
            raise DecryptError(f"HPKE decapsulation failed: {err}") from err
        return self._extract_and_expand(dh, enc + self.serialize_public(sk.public_key()))


DHKEM_P256 = DHKEM(
    kem_id=0x0010,
    kdf=HKDF_SHA256,
    nsecret=32,
    nsk=32,
    npk=65,
    curve=ec.SECP256R1(),
    order=0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    bitmask=0xFF,
    rust_kem=chpke.KEM.P256,
)
DHKEM_P384 = DHKEM(
    kem_id=0x0011,
    kdf=HKDF_SHA384,
    nsecret=48,
    nsk=48,
    npk=97,
    curve=ec.SECP384R1(),
    order=int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
        "C7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    bitmask=0xFF,
    rust_kem=chpke.KEM.P384,
)
DHKEM_P521 = DHKEM(
    kem_id=0x0012,
    kdf=HKDF_SHA512,
    nsecret=64,
    nsk=66,
    npk=133,
    curve=ec.SECP521R1(),
    order=int(
        "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA"
        "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
    bitmask=0x01,
    rust_kem=chpke.KEM.P521,
)
DHKEM_X25519 = DHKEM(
    kem_id=0x0020, kdf=HKDF_SHA256, nsecret=32, nsk=32, npk=32, rust_kem=chpke.KEM.X25519
)
DHKEM_X448 = DHKEM(kem_id=0x0021, kdf=HKDF_SHA512, nsecret=64, nsk=56, npk=56)

_RUST_KDF = {
    0x0001: chpke.KDF.HKDF_SHA256,
    0x0002: chpke.KDF.HKDF_SHA384,
    0x0003: chpke.KDF.HKDF_SHA512,
}
_RUST_AEAD = {
    0x0001: chpke.AEAD.AES_128_GCM,
    0x0002: chpke.AEAD.AES_256_GCM,
    0x0003: chpke.AEAD.CHACHA20_POLY1305,
}


class HPKE:
    """HPKE base mode, single-shot seal/open (sequence number 0)."""

    __slots__ = ("_rust", "aead", "kdf", "kem", "suite_id")

    def __init__(self, kem: DHKEM, kdf: KDF, aead: AEAD, *, use_rust: bool = True) -> None:
        self.kem = kem
        self.kdf = kdf
        self.aead = aead
        self.suite_id = b"HPKE" + b"".join(
            i.to_bytes(2, "big") for i in (kem.kem_id, kdf.kdf_id, aead.aead_id)
        )
        self._rust = (
            chpke.Suite(kem.rust_kem, _RUST_KDF[kdf.kdf_id], _RUST_AEAD[aead.aead_id])
            if use_rust and kem.rust_kem is not None
            else None
        )

    def _secret_and_context(self, shared_secret: bytes, info: bytes) -> tuple[bytes, bytes]:
        sid, kdf = self.suite_id, self.kdf
        psk_id_hash = kdf.labeled_extract(sid, b"", b"psk_id_hash", b"")
        info_hash = kdf.labeled_extract(sid, b"", b"info_hash", info)
        context = _MODE_BASE + psk_id_hash + info_hash
        return kdf.labeled_extract(sid, shared_secret, b"secret", b""), context

    def _key_schedule(self, shared_secret: bytes, info: bytes) -> tuple[bytes, bytes]:
        secret, context = self._secret_and_context(shared_secret, info)
        key = self.kdf.labeled_expand(self.suite_id, secret, b"key", context, self.aead.nk)
        nonce = self.kdf.labeled_expand(self.suite_id, secret, b"base_nonce", context, self.aead.nn)
        return key, nonce

    def _export(
        self, shared_secret: bytes, info: bytes, exporter_context: bytes, length: int
    ) -> bytes:
        sid, kdf = self.suite_id, self.kdf
        secret, context = self._secret_and_context(shared_secret, info)
        exporter_secret = kdf.labeled_expand(sid, secret, b"exp", context, kdf.nh)
        return kdf.labeled_expand(sid, exporter_secret, b"sec", exporter_context, length)

    def send_export(
        self, pk_r: bytes, info: bytes, exporter_context: bytes, length: int
    ) -> tuple[bytes, bytes]:
        """SetupBaseS then Context.Export: (enc, exported secret)."""
        shared_secret, enc = self.kem.encap(pk_r)
        return enc, self._export(shared_secret, info, exporter_context, length)

    def receive_export(
        self, enc: bytes, sk_r: bytes, info: bytes, exporter_context: bytes, length: int
    ) -> bytes:
        """SetupBaseR then Context.Export; DecryptError if ``enc`` is unusable."""
        shared_secret = self.kem.decap(enc, sk_r)
        return self._export(shared_secret, info, exporter_context, length)

    def seal(
        self, pk_r: bytes, info: bytes, aad: bytes, pt: bytes, *, ikm_e: bytes | None = None
    ) -> tuple[bytes, bytes]:
        """SealBase: (enc, ciphertext). ``ikm_e`` fixes the ephemeral key (tests only)."""
        if self._rust is not None and not aad and ikm_e is None:
            pk = self.kem.load_public(pk_r)
            assert not isinstance(pk, x448.X448PublicKey)  # no Rust suite for X448
            out = self._rust.encrypt(pt, pk, info)
            return out[: self.kem.npk], out[self.kem.npk :]
        shared_secret, enc = self.kem.encap(pk_r, ikm_e=ikm_e)
        key, nonce = self._key_schedule(shared_secret, info)
        return enc, self.aead.seal(key, nonce, aad, pt)

    def open(self, sk_r: bytes, enc: bytes, info: bytes, aad: bytes, ct: bytes) -> bytes:
        """OpenBase; DecryptError when the ciphertext or enc does not authenticate."""
        if self._rust is not None and not aad:
            sk = self.kem.load_private(sk_r)
            assert not isinstance(sk, x448.X448PrivateKey)  # no Rust suite for X448
            if len(enc) != self.kem.npk:
                raise DecryptError(f"HPKE enc must be {self.kem.npk} bytes, got {len(enc)}")
            try:
                return self._rust.decrypt(enc + ct, sk, info)
            except (InvalidTag, ValueError) as err:
                raise DecryptError("HPKE open failed") from err
        shared_secret = self.kem.decap(enc, sk_r)
        key, nonce = self._key_schedule(shared_secret, info)
        return self.aead.open(key, nonce, aad, ct)
