"""One datagram session per direction: sealing records into datagrams, and opening them.

`SendSession` packs small records into whole datagrams (u16 length each), each sealed
on its own (AES-256-GCM, the counter as nonce, the header as associated data). A record
too large for one datagram is sealed once as a whole and its ciphertext cut into
fragments of exactly the path's datagram size (`Fragments`: headers and pieces kept
apart, so one GSO send gathers them without a copy in between). One AEAD call per
record instead of one per fragment: a call's fixed cost is most of the cost of a 1.4 KB
one.

`ReceiveSession` checks the replay window before decrypting and moves it only after
the tag verified (forgeries cannot move it). Fragments of one record have consecutive
counters, so `counter - index` (the record's base counter) names the record; they are
buffered (bounded in count, bytes and time) until all arrived, then the record is
authenticated and opened as a whole.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..replay import ReplayWindow
from ..wire import MAX_PACKET
from .codec import (
    HEADER_LEN,
    KIND_DATA,
    LENGTH_LEN,
    MAX_FRAGMENTS,
    OVERHEAD,
    TAG_LEN,
    VERSION,
    Header,
    MalformedDatagram,
    nonce,
    pack_header,
    pack_records,
)

COUNTER_LIMIT = 1 << 60
"""A send session is replaced long before its counter (the nonce) could repeat."""
MAX_PARTIAL = 64
"""Records being reassembled per session; the oldest is given up beyond this."""
PARTIAL_TIMEOUT_S = 2.0


class SessionExhausted(Exception):
    """The send session used up its counters; a new session must be keyed."""


class SendSession:
    __slots__ = ("_aead", "counter", "created", "session")

    def __init__(self, session: int, key: bytes) -> None:
        self.session = session
        self._aead = AESGCM(key)
        self.counter = 0
        self.created = time.monotonic()

    def seal(self, kind: int, plaintext: bytes, *, index: int = 0, count: int = 1) -> bytes:
        self.counter += 1
        if self.counter >= COUNTER_LIMIT:
            raise SessionExhausted
        header = pack_header(VERSION, kind, index, count, self.session, self.counter)
        return header + self._aead.encrypt(nonce(self.counter), plaintext, header)

    def seal_records(self, records: list[bytes], datagram_size: int) -> list[bytes]:
        """DATA datagrams of at most `datagram_size` bytes carrying `records` in order."""
        out: list[bytes] = []
        for item in self.seal_sends(records, datagram_size):
            if isinstance(item, Fragments):
                out.extend(item.datagrams())
            else:
                out.append(item)
        return out

    def seal_sends(self, records: list[bytes], datagram_size: int) -> list[bytes | Fragments]:
        """`records` sealed in order, for sending: whole datagrams (small records packed
        together) and, for each record too large for one, its `Fragments`."""
        room = datagram_size - OVERHEAD
        out: list[bytes | Fragments] = []
        batch: list[bytes] = []
        used = 0
        for record in records:
            need = LENGTH_LEN + len(record)
            if need > room:
                if batch:
                    out.append(self.seal(KIND_DATA, pack_records(batch)))
                    batch, used = [], 0
                out.append(self._fragments(record, datagram_size))
                continue
            if used + need > room:
                out.append(self.seal(KIND_DATA, pack_records(batch)))
                batch, used = [], 0
            batch.append(record)
            used += need
        if batch:
            out.append(self.seal(KIND_DATA, pack_records(batch)))
        return out

    def _fragments(self, record: bytes, datagram_size: int) -> Fragments:
        room = datagram_size - HEADER_LEN
        count = -(-(len(record) + TAG_LEN) // room)
        if count > MAX_FRAGMENTS:
            raise ValueError(f"a record of {len(record)} bytes needs {count} fragments")
        base = self.counter + 1
        self.counter += count  # the record takes `count` counters; `base` is its nonce
        if self.counter >= COUNTER_LIMIT:
            raise SessionExhausted
        session = self.session
        sealed = self._aead.encrypt(nonce(base), record, fragmented_aad(count, session, base))
        # Header and piece of each fragment stay apart: the send call gathers them, so
        # the ciphertext is copied once, by the kernel.
        view = memoryview(sealed)
        parts: list[bytes | memoryview] = []
        for i in range(count):
            parts.append(pack_header(VERSION, KIND_DATA, i, count, session, base + i))
            parts.append(view[i * room : (i + 1) * room])
        return Fragments(parts, datagram_size)


@dataclass(frozen=True)
class Fragments:
    """The datagrams of one fragmented record as buffers in order: header, piece, header,
    piece... Every datagram but the last is exactly `size` bytes."""

    parts: list[bytes | memoryview]
    size: int

    @property
    def count(self) -> int:
        return len(self.parts) // 2

    def nbytes(self) -> int:
        return sum(len(p) for p in self.parts)

    def datagrams(self) -> list[bytes]:
        parts = self.parts
        return [bytes(parts[i]) + parts[i + 1] for i in range(0, len(parts), 2)]


def fragmented_aad(count: int, session: int, base: int) -> bytes:
    """Associated data of a fragmented record: the header of its fragment 0."""
    return pack_header(VERSION, KIND_DATA, 0, count, session, base)


MAX_SEALED = MAX_PACKET + TAG_LEN
"""Largest fragmented record, sealed: a reassembly that grows past it is given up."""


@dataclass
class _Partial:
    count: int
    started: float
    size: int = 0
    received: int = 0
    # Pieces kept as blocks of consecutive fragments: first index -> their joined bytes.
    blocks: dict[int, bytes] = field(default_factory=dict)
    # One byte per fragment index: 1 once received (a second copy is a conflict).
    have: bytearray = field(default_factory=bytearray)


class ReceiveSession:
    __slots__ = ("_aead", "_partial", "created", "peer", "refused", "session", "window")

    def __init__(self, session: int, key: bytes, peer: str) -> None:
        self.session = session
        self.peer = peer
        self._aead = AESGCM(key)
        self.window = ReplayWindow()
        self._partial: dict[int, _Partial] = {}
        self.created = time.monotonic()
        self.refused = "replay"

    def open(self, header: Header, datagram: bytes | memoryview) -> bytes:
        """The plaintext of an authentic, fresh datagram; MalformedDatagram otherwise
        (`replay` or `auth`), leaving the session as it was."""
        plaintext = self.open_counter(header.counter, memoryview(datagram))
        if plaintext is None:
            raise MalformedDatagram(self.refused, f"counter {header.counter}")
        return plaintext

    def open_counter(self, counter: int, datagram: memoryview) -> bytes | None:
        """`open` for the hot path: None when refused, the reason in `refused`."""
        window = self.window
        if not window.check(counter):
            self.refused = "replay"
            return None
        try:
            plaintext: bytes = self._aead.decrypt(
                nonce(counter), datagram[HEADER_LEN:], datagram[:HEADER_LEN]
            )
        except InvalidTag:
            self.refused = "auth"
            return None
        if not window.accept(counter):
            self.refused = "replay"
            return None
        return plaintext

    def reassemble(
        self, header: Header, datagram: bytes | memoryview, now: float
    ) -> tuple[bytes | None, int]:
        """Add the fragment `datagram`; (the opened record or None, fragments given up).
        When None, `refused` says why if the fragment was refused (else it was kept)."""
        return self.add_fragment(
            header.index, header.count, header.counter, memoryview(datagram)[HEADER_LEN:], now
        )

    def add_fragment(
        self, index: int, count: int, counter: int, piece: bytes | memoryview, now: float
    ) -> tuple[bytes | None, int]:
        """`reassemble` for one fragment: `piece` is the datagram after its header."""
        return self.add_pieces(index, count, counter - index, [piece], now)

    def add_pieces(
        self, index: int, count: int, base: int, pieces: Sequence[bytes | memoryview], now: float
    ) -> tuple[bytes | None, int]:
        """Add fragments `index`, `index + 1`, ... of the record `base` (its fragment 0's
        counter) of `count` fragments, each piece a datagram after its header; (the opened
        record or None, fragments given up). When None, `refused` says why if they were
        refused (else they were kept). A GRO receive hands over a run of consecutive
        fragments at once: they are kept as one block (one copy, one entry)."""
        self.refused = ""
        if not self.window.check(base):
            self.refused = "replay"  # a record already delivered, or too old
            return None, 0
        n = len(pieces)
        if not 0 < n <= count - index:
            self.refused = "fragment_conflict"
            return None, 0
        if index == 0 and n == count:
            return self._open_record(count, base, b"".join(pieces)), 0
        partial = self._partial.get(base)
        given_up = 0
        if partial is None:
            given_up = self.expire(now)
            if len(self._partial) >= MAX_PARTIAL:
                oldest = next(iter(self._partial))
                given_up += self._partial.pop(oldest).received
            partial = self._partial[base] = _Partial(count, now, have=bytearray(count))
        elif partial.count != count:
            # Not from the honest sender (it cut each record once): keep the first word.
            self.refused = "fragment_conflict"
            return None, given_up
        elif any(partial.have[index : index + n]):
            if n == 1:
                self.refused = "fragment_conflict"  # the first word stands, as above
                return None, given_up
            return self._add_one_by_one(index, count, base, pieces, now)
        # A copy: a view would keep the whole receive buffer it points into (up to 64 KiB
        # per coalesced run) alive for a piece of any size, so kept pieces could pin far
        # more memory than the bound below counts.
        block = b"".join(pieces)
        partial.blocks[index] = block
        partial.have[index : index + n] = b"\x01" * n
        partial.received += n
        partial.size += len(block)
        if partial.size > MAX_SEALED:
            del self._partial[base]
            self.refused = "fragment_oversize"
            return None, given_up + partial.received
        if partial.received < partial.count:
            return None, given_up
        del self._partial[base]
        sealed = b"".join([partial.blocks[i] for i in sorted(partial.blocks)])
        return self._open_record(count, base, sealed), given_up

    def _add_one_by_one(
        self, index: int, count: int, base: int, pieces: Sequence[bytes | memoryview], now: float
    ) -> tuple[bytes | None, int]:
        """A block that overlaps fragments already kept: each piece on its own, so a
        forged copy of one fragment in a run costs only itself."""
        record: bytes | None = None
        given_up = 0
        refused = ""
        for i, piece in enumerate(pieces):
            got, lost = self.add_pieces(index + i, count, base, [piece], now)
            given_up += lost
            record = record or got
            refused = refused or self.refused
        self.refused = refused
        return record, given_up

    def _open_record(self, count: int, base: int, sealed: bytes) -> bytes | None:
        """Authenticate and open a whole fragmented record; None (`refused` set) if not."""
        try:
            record: bytes = self._aead.decrypt(
                nonce(base), sealed, fragmented_aad(count, self.session, base)
            )
        except InvalidTag:
            self.refused = "auth"
            return None
        if not self.window.accept(base):  # pragma: no cover - checked before, one thread
            self.refused = "replay"
            return None
        return record

    def expire(self, now: float) -> int:
        """Give up records whose fragments have been waiting too long; how many pieces."""
        given_up = 0
        while self._partial:
            base, oldest = next(iter(self._partial.items()))
            if now - oldest.started < PARTIAL_TIMEOUT_S:
                break
            given_up += oldest.received
            del self._partial[base]
        return given_up

    @property
    def partial_records(self) -> int:
        return len(self._partial)
