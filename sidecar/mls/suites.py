"""The seven RFC 9420 cipher suites and the labeled crypto built on them (section 5).

Keys are bytes in the formats the MLS test vectors use:

* HPKE keys: RFC 9180 ``SerializePrivateKey`` / ``SerializePublicKey`` (see ``hpke``).
* Signature keys: Ed25519/Ed448 private keys are the RFC 8032 seed (32 / 57 bytes),
  ECDSA private keys the big-endian scalar (32 / 48 / 66 bytes); public keys are the
  RFC 8032 encoding or the uncompressed SEC1 point. ECDSA signatures are DER.

Error convention: ``verify_with_label`` returns a bool (False for a bad signature or
a malformed public key) and never raises for those; the callers that act on a
message turn False into ``SignatureError``. Decryption failures raise
``DecryptError``; unknown suites ``UnsupportedError``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import constant_time, hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import hpke
from .codec import encode_varint
from .errors import UnsupportedError, ValidationError

__all__ = ["SUITE_IDS", "CipherSuite", "SignatureScheme", "get_suite"]

_LABEL_PREFIX = b"MLS 1.0 "
# Signatures that verified (SHA-256 of scheme, key, signature and message), process-wide.
_VERIFIED: set[bytes] = set()
MAX_VERIFIED = 65536

_SigPrivate = ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | ec.EllipticCurvePrivateKey
_SigPublic = ed25519.Ed25519PublicKey | ed448.Ed448PublicKey | ec.EllipticCurvePublicKey


def _opaque(data: bytes) -> bytes:
    return encode_varint(len(data)) + data


def _mls_label(label: str | bytes) -> bytes:
    return _LABEL_PREFIX + (label.encode() if isinstance(label, str) else label)


@dataclass(frozen=True, slots=True)
class SignatureScheme:
    """Ed25519, Ed448 or ECDSA over a NIST curve with its hash."""

    name: str
    nsk: int
    curve: ec.EllipticCurve | None = None
    hash_algorithm: type[hashes.HashAlgorithm] | None = None

    def load_private(self, priv: bytes) -> _SigPrivate:
        return _load_sig_private(self, priv)

    def load_public(self, pub: bytes) -> _SigPublic:
        return _load_sig_public(self, pub)

    def _load_private(self, priv: bytes) -> _SigPrivate:
        # ECDSA scalars may come without leading zero bytes (P-521 in the MLS vectors).
        size_ok = 0 < len(priv) <= self.nsk if self.curve is not None else len(priv) == self.nsk
        if not size_ok:
            raise ValidationError(f"{self.name} private key must be {self.nsk} bytes")
        try:
            if self.curve is not None:
                return ec.derive_private_key(int.from_bytes(priv, "big"), self.curve)
            if self.name == "ed25519":
                return ed25519.Ed25519PrivateKey.from_private_bytes(priv)
            return ed448.Ed448PrivateKey.from_private_bytes(priv)
        except ValueError as err:
            raise ValidationError(f"invalid {self.name} private key: {err}") from err

    def _load_public(self, pub: bytes) -> _SigPublic:
        try:
            if self.curve is not None:
                return ec.EllipticCurvePublicKey.from_encoded_point(self.curve, pub)
            if self.name == "ed25519":
                return ed25519.Ed25519PublicKey.from_public_bytes(pub)
            return ed448.Ed448PublicKey.from_public_bytes(pub)
        except ValueError as err:
            raise ValidationError(f"invalid {self.name} public key: {err}") from err

    def serialize_public(self, key: _SigPublic) -> bytes:
        if isinstance(key, ec.EllipticCurvePublicKey):
            return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return key.public_bytes_raw()

    def sign(self, priv: bytes, message: bytes) -> bytes:
        key = self.load_private(priv)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            assert self.hash_algorithm is not None
            return key.sign(message, ec.ECDSA(self.hash_algorithm()))
        return key.sign(message)

    def verify(self, pub: bytes, message: bytes, signature: bytes) -> bool:
        # A node checks the same leaf signatures in every tree it is given (each Welcome
        # carries all of them): remember those that verified, by a hash of everything.
        digest = hashlib.sha256(
            b"%s %d %d " % (self.name.encode(), len(pub), len(signature))
            + pub
            + signature
            + message
        ).digest()
        if digest in _VERIFIED:
            return True
        try:
            key = self.load_public(pub)
            if isinstance(key, ec.EllipticCurvePublicKey):
                assert self.hash_algorithm is not None
                key.verify(signature, message, ec.ECDSA(self.hash_algorithm()))
            else:
                key.verify(signature, message)
        except (InvalidSignature, ValidationError, ValueError):
            return False
        if len(_VERIFIED) >= MAX_VERIFIED:
            _VERIFIED.clear()
        _VERIFIED.add(digest)
        return True

    def generate(self) -> tuple[bytes, bytes]:
        """A fresh key pair: (serialized private, serialized public)."""
        key: _SigPrivate
        if self.curve is not None:
            key = ec.generate_private_key(self.curve)
            priv = key.private_numbers().private_value.to_bytes(self.nsk, "big")
        elif self.name == "ed25519":
            key = ed25519.Ed25519PrivateKey.generate()
            priv = key.private_bytes_raw()
        else:
            key = ed448.Ed448PrivateKey.generate()
            priv = key.private_bytes_raw()
        return priv, self.serialize_public(key.public_key())

    def public_from_private(self, priv: bytes) -> bytes:
        return self.serialize_public(self.load_private(priv).public_key())


# Long-lived identity keys are loaded once; ECDSA loading costs a scalar multiplication.
@functools.lru_cache(maxsize=64)
def _load_sig_private(scheme: SignatureScheme, priv: bytes) -> _SigPrivate:
    return scheme._load_private(priv)


@functools.lru_cache(maxsize=4096)
def _load_sig_public(scheme: SignatureScheme, pub: bytes) -> _SigPublic:
    return scheme._load_public(pub)


ED25519 = SignatureScheme("ed25519", 32)
ED448 = SignatureScheme("ed448", 57)
ECDSA_P256 = SignatureScheme("ecdsa_secp256r1_sha256", 32, ec.SECP256R1(), hashes.SHA256)
ECDSA_P384 = SignatureScheme("ecdsa_secp384r1_sha384", 48, ec.SECP384R1(), hashes.SHA384)
ECDSA_P521 = SignatureScheme("ecdsa_secp521r1_sha512", 66, ec.SECP521R1(), hashes.SHA512)


@dataclass(frozen=True, slots=True)
class CipherSuite:
    """One MLS cipher suite: KEM, KDF/hash, AEAD and signature scheme."""

    id: int
    name: str
    kem: hpke.DHKEM
    kdf: hpke.KDF
    aead: hpke.AEAD
    signature: SignatureScheme
    hpke_suite: hpke.HPKE = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hpke_suite", hpke.HPKE(self.kem, self.kdf, self.aead))

    @property
    def nh(self) -> int:
        """Hash and KDF.Extract output length."""
        return self.kdf.nh

    @property
    def nk(self) -> int:
        return self.aead.nk

    @property
    def nn(self) -> int:
        return self.aead.nn

    # -- hash, MAC, KDF ----------------------------------------------------------

    def hash(self, data: bytes) -> bytes:
        digest = hashes.Hash(self.kdf.algorithm())
        digest.update(data)
        return digest.finalize()

    def mac(self, key: bytes, data: bytes) -> bytes:
        """HMAC with the suite's hash (membership and confirmation tags)."""
        h = hmac.HMAC(key, self.kdf.algorithm())
        h.update(data)
        return h.finalize()

    def verify_mac(self, key: bytes, data: bytes, tag: bytes) -> bool:
        return constant_time.bytes_eq(self.mac(key, data), tag)

    def kdf_extract(self, salt: bytes, ikm: bytes) -> bytes:
        return self.kdf.extract(salt, ikm)

    def kdf_expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        return self.kdf.expand(prk, info, length)

    def expand_with_label(
        self, secret: bytes, label: str | bytes, context: bytes, length: int
    ) -> bytes:
        info = length.to_bytes(2, "big") + _opaque(_mls_label(label)) + _opaque(context)
        return self.kdf.expand(secret, info, length)

    def derive_secret(self, secret: bytes, label: str | bytes) -> bytes:
        return self.expand_with_label(secret, label, b"", self.kdf.nh)

    def derive_tree_secret(
        self, secret: bytes, label: str | bytes, generation: int, length: int
    ) -> bytes:
        return self.expand_with_label(secret, label, generation.to_bytes(4, "big"), length)

    # -- AEAD --------------------------------------------------------------------

    def aead_seal(self, key: bytes, nonce: bytes, aad: bytes, pt: bytes) -> bytes:
        return self.aead.seal(key, nonce, aad, pt)

    def aead_open(self, key: bytes, nonce: bytes, aad: bytes, ct: bytes) -> bytes:
        """Plaintext; DecryptError if the tag does not verify."""
        return self.aead.open(key, nonce, aad, ct)

    # -- HPKE ----------------------------------------------------------------------

    def hpke_seal(
        self, public_key: bytes, info: bytes, aad: bytes, pt: bytes
    ) -> tuple[bytes, bytes]:
        """SealBase: (kem_output, ciphertext)."""
        return self.hpke_suite.seal(public_key, info, aad, pt)

    def hpke_open(
        self, private_key: bytes, kem_output: bytes, info: bytes, aad: bytes, ct: bytes
    ) -> bytes:
        """OpenBase; DecryptError on failure."""
        return self.hpke_suite.open(private_key, kem_output, info, aad, ct)

    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """KEM.DeriveKeyPair: (serialized private, serialized public)."""
        return self.kem.derive_key_pair(ikm)

    def generate_hpke_key_pair(self) -> tuple[bytes, bytes]:
        return self.kem.generate_key_pair()

    def hpke_public_from_private(self, private_key: bytes) -> bytes:
        return self.kem.public_from_private(private_key)

    def encrypt_with_label(
        self, public_key: bytes, label: str | bytes, context: bytes, pt: bytes
    ) -> tuple[bytes, bytes]:
        """EncryptWithLabel: (kem_output, ciphertext)."""
        info = _opaque(_mls_label(label)) + _opaque(context)
        return self.hpke_suite.seal(public_key, info, b"", pt)

    def decrypt_with_label(
        self,
        private_key: bytes,
        label: str | bytes,
        context: bytes,
        kem_output: bytes,
        ct: bytes,
    ) -> bytes:
        """DecryptWithLabel; DecryptError on failure."""
        info = _opaque(_mls_label(label)) + _opaque(context)
        return self.hpke_suite.open(private_key, kem_output, info, b"", ct)

    # -- signatures ------------------------------------------------------------------

    def sign_with_label(self, sig_priv: bytes, label: str | bytes, content: bytes) -> bytes:
        return self.signature.sign(sig_priv, _opaque(_mls_label(label)) + _opaque(content))

    def verify_with_label(
        self, sig_pub: bytes, label: str | bytes, content: bytes, signature: bytes
    ) -> bool:
        """True iff ``signature`` is valid; False (never an exception) otherwise."""
        sign_content = _opaque(_mls_label(label)) + _opaque(content)
        return self.signature.verify(sig_pub, sign_content, signature)

    def generate_signature_key_pair(self) -> tuple[bytes, bytes]:
        """(serialized private, serialized public) signature key pair."""
        return self.signature.generate()

    def signature_public_from_private(self, sig_priv: bytes) -> bytes:
        return self.signature.public_from_private(sig_priv)

    # -- hash references ---------------------------------------------------------------

    def ref_hash(self, label: str | bytes, value: bytes) -> bytes:
        raw_label = label.encode() if isinstance(label, str) else label
        return self.hash(_opaque(raw_label) + _opaque(value))

    def make_key_package_ref(self, key_package: bytes) -> bytes:
        """KeyPackageRef of an encoded KeyPackage."""
        return self.ref_hash(b"MLS 1.0 KeyPackage Reference", key_package)

    def make_proposal_ref(self, authenticated_content: bytes) -> bytes:
        """ProposalRef of an encoded AuthenticatedContent."""
        return self.ref_hash(b"MLS 1.0 Proposal Reference", authenticated_content)


_SUITES = {
    s.id: s
    for s in (
        CipherSuite(
            0x0001,
            "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
            hpke.DHKEM_X25519,
            hpke.HKDF_SHA256,
            hpke.AES_128_GCM,
            ED25519,
        ),
        CipherSuite(
            0x0002,
            "MLS_128_DHKEMP256_AES128GCM_SHA256_P256",
            hpke.DHKEM_P256,
            hpke.HKDF_SHA256,
            hpke.AES_128_GCM,
            ECDSA_P256,
        ),
        CipherSuite(
            0x0003,
            "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
            hpke.DHKEM_X25519,
            hpke.HKDF_SHA256,
            hpke.CHACHA20_POLY1305,
            ED25519,
        ),
        CipherSuite(
            0x0004,
            "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448",
            hpke.DHKEM_X448,
            hpke.HKDF_SHA512,
            hpke.AES_256_GCM,
            ED448,
        ),
        CipherSuite(
            0x0005,
            "MLS_256_DHKEMP521_AES256GCM_SHA512_P521",
            hpke.DHKEM_P521,
            hpke.HKDF_SHA512,
            hpke.AES_256_GCM,
            ECDSA_P521,
        ),
        CipherSuite(
            0x0006,
            "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448",
            hpke.DHKEM_X448,
            hpke.HKDF_SHA512,
            hpke.CHACHA20_POLY1305,
            ED448,
        ),
        CipherSuite(
            0x0007,
            "MLS_256_DHKEMP384_AES256GCM_SHA384_P384",
            hpke.DHKEM_P384,
            hpke.HKDF_SHA384,
            hpke.AES_256_GCM,
            ECDSA_P384,
        ),
    )
}

SUITE_IDS: tuple[int, ...] = tuple(_SUITES)


def get_suite(suite_id: int) -> CipherSuite:
    """The cipher suite with this RFC 9420 code point; UnsupportedError otherwise."""
    try:
        return _SUITES[suite_id]
    except KeyError:
        raise UnsupportedError(f"unsupported cipher suite 0x{suite_id:04x}") from None
