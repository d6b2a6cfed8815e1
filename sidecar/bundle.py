"""Bundles: several small units to one destination sealed as one DATA packet.

A burst of small frames (64-byte datagrams, TCP ACKs, DNS) read from the TAP in one
batch would otherwise cost a seal, a header and a record each. Consecutive units of a
batch with the same token and the same destination MAC, each at most MAX_UNIT bytes,
are joined into one plaintext of at most MAX_BYTES (it fits the smallest datagram size,
section 8b), sealed once with flag BUNDLE:

    (u16 length || unit) repeated, at least two units, nothing after the last

Order is kept (only consecutive units are joined), nothing waits (only what one TAP read
batch already holds is joined), and a bundle is never fragmented. The receiver splits
it after decryption; every unit then goes through the same checks as a lone one. A
bundle whose lengths do not tile it exactly is dropped whole, counted
`bundle_malformed`: only a holder of the frame key can produce one.
"""

from __future__ import annotations

import struct

MAX_UNIT = 512
"""Larger units gain little from sharing a seal: they go alone."""
MAX_BYTES = 1100
"""Plaintext of a bundle: with the DATA header, tag and datagram overhead it fits the
smallest datagram size the datagram path uses (1232 bytes)."""
LENGTH_LEN = 2
_LENGTH = struct.Struct(">H")


class BundleError(ValueError):
    """Bytes that are not a bundle; `reason` is the drop counter label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def join(units: list[bytes]) -> bytes:
    """The plaintext of a bundle of `units` (each at most MAX_UNIT bytes)."""
    pack = _LENGTH.pack
    return b"".join([part for unit in units for part in (pack(len(unit)), unit)])


def split(plaintext: bytes) -> list[bytes]:
    """The units of a bundle's plaintext; BundleError unless they tile it exactly."""
    out: list[bytes] = []
    pos, end = 0, len(plaintext)
    unpack = _LENGTH.unpack_from
    while pos < end:
        if end - pos < LENGTH_LEN:
            raise BundleError("bundle_malformed")
        (length,) = unpack(plaintext, pos)
        pos += LENGTH_LEN
        if length == 0 or pos + length > end:
            raise BundleError("bundle_malformed")
        out.append(plaintext[pos : pos + length])
        pos += length
    if len(out) < 2:
        raise BundleError("bundle_malformed")
    return out
