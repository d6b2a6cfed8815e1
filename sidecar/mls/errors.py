"""Typed errors raised by the MLS implementation.

Every error the package raises on purpose is an ``MLSError``; callers that only
need to know "this message/state is unusable" catch the base class, callers that
react differently (drop a replay, wait for an epoch) catch the subclass.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "DecryptError",
    "EncodeError",
    "EpochError",
    "MLSError",
    "ReplayError",
    "SignatureError",
    "UnsupportedError",
    "ValidationError",
]


class MLSError(Exception):
    """Base class of every error raised by ``peertap.sidecar.mls``."""


class DecodeError(MLSError):
    """Bytes are not a valid encoding: truncated, trailing data, bad varint, bad enum."""


class EncodeError(MLSError):
    """A value cannot be encoded (integer out of range, vector longer than 2^30-1)."""


class ValidationError(MLSError):
    """Well-formed input that violates a protocol rule (RFC 9420 validity checks)."""


class SignatureError(MLSError):
    """A signature, membership tag or confirmation tag did not verify."""


class DecryptError(MLSError):
    """AEAD or HPKE decryption failed (wrong key, tampered ciphertext or AAD)."""


class EpochError(MLSError):
    """A message belongs to an epoch other than the one it is processed in."""


class ReplayError(MLSError):
    """A generation of a secret-tree ratchet was already consumed (or deleted)."""


class UnsupportedError(MLSError):
    """A cipher suite, credential type, extension or version this implementation lacks."""
