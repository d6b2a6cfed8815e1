"""Fragmentation before encryption, reassembly only at the receiving member.

A plaintext too large for one DATA packet is cut into chunks; each chunk is
sealed as its own DATA packet with flag FRAGMENT and this inner header:

    0  16  fragment id (random, 128 bit)
    16  4  offset of the chunk in the whole plaintext (u32)
    20  4  total length of the whole plaintext (u32)
    24  .. chunk

Relays see ordinary DATA packets and keep no fragment state. Receivers keep a
bounded number of partial units for a short time; anything inconsistent is
dropped and counted.
"""

from __future__ import annotations

import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from . import wire

FRAG_HEADER = struct.Struct(">16sII")
FRAG_HEADER_LEN = FRAG_HEADER.size
# Plaintext that fits in one DATA packet without fragmenting.
MAX_PLAINTEXT = wire.MAX_PACKET - wire.DATA_HEADER_LEN - wire.TAG_LEN
MAX_CHUNK = MAX_PLAINTEXT - FRAG_HEADER_LEN
MAX_UNIT = 256 * 1024
MAX_PENDING = 256
PENDING_TTL_S = 2.0


class FragmentError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def split(plaintext: bytes, *, max_plaintext: int = MAX_PLAINTEXT) -> list[bytes]:
    """Fragment plaintexts (each with its inner header) for a unit over `max_plaintext`
    (less than MAX_PLAINTEXT when packets carry a sender-tag trailer)."""
    total = len(plaintext)
    if total > MAX_UNIT:
        raise FragmentError("unit_too_large")
    if max_plaintext <= FRAG_HEADER_LEN + 1024:
        raise FragmentError("unit_too_large")  # no room left for chunks worth sending
    chunk = max_plaintext - FRAG_HEADER_LEN
    fid = os.urandom(16)
    return [
        FRAG_HEADER.pack(fid, off, total) + plaintext[off : off + chunk]
        for off in range(0, total, chunk)
    ]


@dataclass
class _Partial:
    total: int
    created: float
    chunks: dict[int, bytes] = field(default_factory=dict)
    received: int = 0


class Reassembler:
    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        self._pending: OrderedDict[bytes, _Partial] = OrderedDict()
        self._clock = clock or time.monotonic
        self.expired = 0

    def add(self, fragment: bytes) -> bytes | None:
        """Feed one decrypted fragment; returns the whole unit once complete."""
        if len(fragment) <= FRAG_HEADER_LEN:
            raise FragmentError("fragment_short")
        fid, offset, total = FRAG_HEADER.unpack_from(fragment)
        chunk = fragment[FRAG_HEADER_LEN:]
        # A whole unit is larger than one chunk; senders with a tag trailer cut below
        # MAX_PLAINTEXT, so that is the only lower bound a receiver can hold them to.
        if total > MAX_UNIT or total <= len(chunk) or offset + len(chunk) > total:
            raise FragmentError("fragment_bounds")
        now = self._clock()
        self._expire(now)
        part = self._pending.get(fid)
        if part is None:
            if len(self._pending) >= MAX_PENDING:
                self._pending.popitem(last=False)
                self.expired += 1
            part = self._pending[fid] = _Partial(total, now)
        elif part.total != total:
            del self._pending[fid]
            raise FragmentError("fragment_mismatch")
        if offset in part.chunks:
            raise FragmentError("fragment_duplicate")
        part.chunks[offset] = chunk
        part.received += len(chunk)
        if part.received < total:
            return None
        del self._pending[fid]
        # As many bytes as the unit, but they must also tile it: chunks that overlap
        # leave a gap of the same size somewhere else.
        end = 0
        for offset in sorted(part.chunks):
            if offset != end:
                raise FragmentError("fragment_overlap")
            end += len(part.chunks[offset])
        if end != total:
            raise FragmentError("fragment_overlap")
        return b"".join(part.chunks[o] for o in sorted(part.chunks))

    def _expire(self, now: float) -> None:
        while self._pending:
            fid, part = next(iter(self._pending.items()))
            if now - part.created < PENDING_TTL_S:
                break
            del self._pending[fid]
            self.expired += 1

    def __len__(self) -> int:
        return len(self._pending)
