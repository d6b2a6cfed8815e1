"""Fragmentation before encryption, reassembly only at the receiving member.

A plaintext too large for one DATA packet is cut into chunks; each chunk is
sealed as its own DATA packet with flag FRAGMENT and this inner header:

    0  16  fragment id (random, 128 bit)
    16  4  offset of the chunk in the whole plaintext (u32)
    20  4  total length of the whole plaintext (u32)
    24  .. chunk

Relays see ordinary DATA packets and keep no fragment state. Receivers keep a
bounded number and a bounded total size of partial units for a short time, giving
up the oldest to make room; anything inconsistent is dropped and counted.
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
# Bytes of partial units one reassembler may hold. Anyone with the VLAN's frame key
# can open units and never finish them; without a byte bound, 256 units of 256 KiB
# would be 64 MiB per port. A unit's fragments leave the sender in one batch, so few
# are partial at once; 4 MiB still holds 64 half-arrived 64 KiB GSO units (or 16 of
# the largest) from paths that reorder, and stays small beside a node's 128 MiB.
MAX_PENDING_BYTES = 4 * 1024 * 1024
# What one held chunk costs beyond its bytes (bytes object, int key, dict slot:
# about 100 bytes measured), charged so that many tiny chunks cannot hide from the bound.
CHUNK_OVERHEAD = 128


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
    held: int = 0  # received plus CHUNK_OVERHEAD per chunk: what counts against the bound


class Reassembler:
    """Partial units of one VLAN port, oldest first.

    Units given up before they complete are counted here (`expired`: older than
    PENDING_TTL_S; `evicted`: pushed out by the unit-count or byte bound) and reported
    to `on_give_up(reason, units)` with reason `fragment_expired` or `fragment_evicted`.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        max_bytes: int = MAX_PENDING_BYTES,
        on_give_up: Callable[[str, int], None] | None = None,
    ) -> None:
        self._pending: OrderedDict[bytes, _Partial] = OrderedDict()
        self._clock = clock or time.monotonic
        self._on_give_up = on_give_up
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self.expired = 0
        self.evicted = 0

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
                self._forget(next(iter(self._pending)))
                self._gave_up("fragment_evicted", 1)
            part = self._pending[fid] = _Partial(total, now)
        elif part.total != total:
            self._forget(fid)
            raise FragmentError("fragment_mismatch")
        if offset in part.chunks:
            raise FragmentError("fragment_duplicate")
        cost = len(chunk) + CHUNK_OVERHEAD
        if self.held_bytes + cost > self.max_bytes and not self._make_room(cost, fid):
            # This unit alone would pass the bound (only tiny chunks can do that).
            self._forget(fid)
            self._gave_up("fragment_evicted", 1)
            return None
        part.chunks[offset] = chunk
        part.received += len(chunk)
        part.held += cost
        self.held_bytes += cost
        if part.received < total:
            return None
        self._forget(fid)
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

    def _make_room(self, cost: int, keep: bytes) -> bool:
        """Give up the oldest partial units but `keep` until `cost` more bytes fit;
        False if they do not fit even with `keep` alone left."""
        need = self.held_bytes + cost - self.max_bytes
        victims: list[bytes] = []
        for fid, part in self._pending.items():
            if need <= 0:
                break
            if fid != keep:
                victims.append(fid)
                need -= part.held
        for fid in victims:
            self._forget(fid)
        self._gave_up("fragment_evicted", len(victims))
        return need <= 0

    def _expire(self, now: float) -> None:
        gone = 0
        while self._pending:
            fid, part = next(iter(self._pending.items()))
            if now - part.created < PENDING_TTL_S:
                break
            self._forget(fid)
            gone += 1
        self._gave_up("fragment_expired", gone)

    def _forget(self, fid: bytes) -> None:
        self.held_bytes -= self._pending.pop(fid).held

    def _gave_up(self, reason: str, units: int) -> None:
        if units == 0:
            return
        if reason == "fragment_expired":
            self.expired += units
        else:
            self.evicted += units
        if self._on_give_up is not None:
            self._on_give_up(reason, units)

    def status(self) -> dict[str, int]:
        """What this reassembler holds now and what it has given up so far."""
        return {
            "pending_units": len(self._pending),
            "pending_bytes": self.held_bytes,
            "expired_units": self.expired,
            "evicted_units": self.evicted,
        }

    def __len__(self) -> int:
        return len(self._pending)
