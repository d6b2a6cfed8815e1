"""Pre-shared keys (RFC 9420 section 8.4): PreSharedKeyID, PSKLabel, psk_secret."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Self

from .codec import Reader, Writer
from .errors import DecodeError, EncodeError
from .suites import CipherSuite

__all__ = ["PSKType", "PreSharedKeyID", "ResumptionPSKUsage", "psk_label", "psk_secret"]


class PSKType(IntEnum):
    EXTERNAL = 1
    RESUMPTION = 2


class ResumptionPSKUsage(IntEnum):
    APPLICATION = 1
    REINIT = 2
    BRANCH = 3


@dataclass(frozen=True)
class PreSharedKeyID:
    """Names one PSK. External PSKs use ``psk_id``; resumption PSKs use
    ``usage``, ``psk_group_id`` and ``psk_epoch``."""

    psktype: int
    psk_nonce: bytes
    psk_id: bytes = b""
    usage: int = 0
    psk_group_id: bytes = b""
    psk_epoch: int = 0

    @classmethod
    def external(cls, psk_id: bytes, psk_nonce: bytes) -> Self:
        return cls(PSKType.EXTERNAL, psk_nonce, psk_id=psk_id)

    @classmethod
    def resumption(cls, usage: int, group_id: bytes, epoch: int, psk_nonce: bytes) -> Self:
        return cls(
            PSKType.RESUMPTION, psk_nonce, usage=usage, psk_group_id=group_id, psk_epoch=epoch
        )

    def write(self, w: Writer) -> None:
        w.u8(self.psktype)
        if self.psktype == PSKType.EXTERNAL:
            w.opaque(self.psk_id)
        elif self.psktype == PSKType.RESUMPTION:
            w.u8(self.usage)
            w.opaque(self.psk_group_id)
            w.u64(self.psk_epoch)
        else:
            raise EncodeError(f"unknown PSKType {self.psktype}")
        w.opaque(self.psk_nonce)

    @classmethod
    def read(cls, r: Reader) -> Self:
        psktype = r.u8()
        if psktype == PSKType.EXTERNAL:
            psk_id = r.opaque()
            return cls(psktype, r.opaque(), psk_id=psk_id)
        if psktype == PSKType.RESUMPTION:
            usage, group_id, epoch = r.u8(), r.opaque(), r.u64()
            return cls(psktype, r.opaque(), usage=usage, psk_group_id=group_id, psk_epoch=epoch)
        raise DecodeError(f"unknown PSKType {psktype}")

    def encode(self) -> bytes:
        w = Writer()
        self.write(w)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data)
        value = cls.read(r)
        r.done()
        return value


def psk_label(psk_id: PreSharedKeyID, index: int, count: int) -> bytes:
    """Encoded PSKLabel {PreSharedKeyID id; uint16 index; uint16 count}."""
    return psk_id.encode() + index.to_bytes(2, "big") + count.to_bytes(2, "big")


def psk_secret(suite: CipherSuite, psks: Sequence[tuple[PreSharedKeyID, bytes]]) -> bytes:
    """Chain ``(id, psk)`` pairs into psk_secret; all-zero of length Nh when empty."""
    zero = bytes(suite.nh)
    secret = zero
    count = len(psks)
    for index, (psk_id, psk) in enumerate(psks):
        extracted = suite.kdf_extract(zero, psk)
        psk_input = suite.expand_with_label(
            extracted, "derived psk", psk_label(psk_id, index, count), suite.nh
        )
        secret = suite.kdf_extract(psk_input, secret)
    return secret
