"""CONTROL messages of any size: split into signed PARTs, put back together on arrival.

A Welcome carries the whole ratchet tree (about 820 bytes per member) and a Commit
that adds many members carries their KeyPackages, so neither fits one CONTROL packet
once a group is large. The sender splits such a body into PART bodies (messages.Part),
each sent as its own signed CONTROL packet; relays flood PARTs like any CONTROL. A
receiver collects the PARTs of one (signer, message id), and once all have arrived
checks that BLAKE3-128(kind || body) is the message id and handles the whole body as
a CONTROL packet of its kind from that signer (docs/protocol.md, section 10.2).

Memory is bounded: a message is at most MAX_MESSAGE bytes, a signer has at most
PER_SIGNER messages in assembly, and all assemblies together hold at most
MAX_PENDING_BYTES; the oldest assembly gives way (counted `mvlan_part_evicted`), and
one not completed within TTL_S is forgotten (`mvlan_part_expired`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import wire
from ..counters import Counters
from . import messages as m

# The most body bytes one CONTROL packet can carry, and what a PART carries of a message.
BODY_MAX = wire.MAX_PACKET - wire.CONTROL_HEADER_LEN - wire.SIGNATURE_LEN
PART_DATA_MAX = BODY_MAX - m.PART_HEADER_LEN
MAX_MESSAGE = 16 * 1024 * 1024
MAX_PARTS = -(-MAX_MESSAGE // PART_DATA_MAX)
MAX_PENDING_BYTES = 4 * MAX_MESSAGE
PER_SIGNER = 4
MAX_ASSEMBLIES = 256
TTL_S = 30.0


class MessageTooLarge(ValueError):
    """A CONTROL message larger than MAX_MESSAGE."""


def split(
    kind: int, body: bytes, *, part_data: int = PART_DATA_MAX, max_body: int = BODY_MAX
) -> list[tuple[int, bytes]]:
    """(kind, body) of the CONTROL packets that carry one message: itself if it fits one
    packet (`max_body`), else PARTs of at most `part_data` bytes each."""
    if len(body) <= max_body:
        return [(kind, body)]
    if len(body) > MAX_MESSAGE:
        raise MessageTooLarge(f"CONTROL message of {len(body)} bytes")
    mid = m.message_id(kind, body)
    pieces = [body[i : i + part_data] for i in range(0, len(body), part_data)]
    return [
        (m.PART, m.Part(mid, kind, index, len(pieces), piece).encode())
        for index, piece in enumerate(pieces)
    ]


@dataclass
class _Assembly:
    kind: int
    count: int
    started: float
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    """PARTs in, whole messages out; everything it drops is counted."""

    def __init__(self, *, counters: Counters, clock: Callable[[], float] = time.monotonic) -> None:
        self.counters = counters
        self._clock = clock
        self._pending: OrderedDict[tuple[bytes, bytes], _Assembly] = OrderedDict()
        self._bytes = 0

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    def add(self, signer: bytes, part: m.Part) -> tuple[int, bytes] | None:
        """Take one verified PART of `signer`; returns (kind, body) once a message is whole."""
        now = self._clock()
        self._expire(now)
        if part.count > MAX_PARTS or len(part.data) > PART_DATA_MAX:
            self.counters.drop("mvlan_part_too_large")
            return None
        key = (signer, part.message_id)
        asm = self._pending.get(key)
        if asm is None:
            if sum(1 for s, _ in self._pending if s == signer) >= PER_SIGNER:
                self._evict(next(k for k in self._pending if k[0] == signer))
            asm = self._pending[key] = _Assembly(part.kind, part.count, now)
        elif (asm.kind, asm.count) != (part.kind, part.count):
            self.counters.drop("mvlan_part_mismatch")
            self._forget(key)
            return None
        if part.index in asm.parts:
            return None  # the same PART again (e.g. over two paths)
        asm.parts[part.index] = part.data
        asm.size += len(part.data)
        self._bytes += len(part.data)
        if asm.size > MAX_MESSAGE:
            self.counters.drop("mvlan_part_too_large")
            self._forget(key)
            return None
        while self._bytes > MAX_PENDING_BYTES or len(self._pending) > MAX_ASSEMBLIES:
            oldest = next(iter(self._pending))
            self._evict(oldest)
            if oldest == key:
                return None
        if len(asm.parts) < asm.count:
            return None
        self._forget(key)
        body = b"".join(asm.parts[i] for i in range(asm.count))
        if m.message_id(asm.kind, body) != part.message_id:
            self.counters.drop("mvlan_part_mismatch")
            return None
        self.counters.inc("mvlan_parts_assembled")
        return asm.kind, body

    def _expire(self, now: float) -> None:
        while self._pending:
            key, asm = next(iter(self._pending.items()))
            if now - asm.started < TTL_S:
                return
            self.counters.drop("mvlan_part_expired")
            self._forget(key)

    def _evict(self, key: tuple[bytes, bytes]) -> None:
        self.counters.drop("mvlan_part_evicted")
        self._forget(key)

    def _forget(self, key: tuple[bytes, bytes]) -> None:
        asm = self._pending.pop(key, None)
        if asm is not None:
            self._bytes -= asm.size
