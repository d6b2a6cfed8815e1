"""One datagram session per direction: sealing records into datagrams, and opening them.

`SendSession` packs small records into whole datagrams (u16 length each) and cuts a
record too large for one datagram into fragments of exactly the path's datagram size,
so a batch comes out as runs of equal-sized datagrams that one GSO send can carry.
Every datagram, fragment or not, is sealed on its own (AES-256-GCM, the counter as
nonce, the header as associated data), so nothing unauthenticated is ever buffered.

`ReceiveSession` checks the replay window before decrypting and moves it only after
the tag verified (forgeries cannot move it), and reassembles fragments: those of one
record have consecutive counters, so `counter - index` names the record.
"""

from __future__ import annotations

import time
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
        room = datagram_size - OVERHEAD
        out: list[bytes] = []
        batch: list[bytes] = []
        used = 0
        for record in records:
            need = LENGTH_LEN + len(record)
            if need > room:
                if batch:
                    out.append(self.seal(KIND_DATA, pack_records(batch)))
                    batch, used = [], 0
                out.extend(self._fragments(record, room))
                continue
            if used + need > room:
                out.append(self.seal(KIND_DATA, pack_records(batch)))
                batch, used = [], 0
            batch.append(record)
            used += need
        if batch:
            out.append(self.seal(KIND_DATA, pack_records(batch)))
        return out

    def _fragments(self, record: bytes, room: int) -> list[bytes]:
        count = -(-len(record) // room)
        if count > MAX_FRAGMENTS:
            raise ValueError(f"a record of {len(record)} bytes needs {count} fragments")
        first = self.counter + 1
        self.counter += count
        if self.counter >= COUNTER_LIMIT:
            raise SessionExhausted
        # The per-fragment loop of `seal`, inlined: this runs ~46 times per 64 KiB unit.
        encrypt, session, out = self._aead.encrypt, self.session, []
        with memoryview(record) as view:
            for i in range(count):
                header = pack_header(VERSION, KIND_DATA, i, count, session, first + i)
                piece = view[i * room : (i + 1) * room]
                out.append(header + encrypt(nonce(first + i), piece, header))
        return out


@dataclass
class _Partial:
    count: int
    started: float
    pieces: dict[int, bytes] = field(default_factory=dict)


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

    def reassemble(self, header: Header, piece: bytes, now: float) -> tuple[bytes | None, int]:
        """Add an authenticated fragment; (the whole record or None, fragments given up)."""
        return self.add_fragment(header.index, header.count, header.counter, piece, now)

    def add_fragment(
        self, index: int, count: int, counter: int, piece: bytes, now: float
    ) -> tuple[bytes | None, int]:
        base = counter - index
        partial = self._partial.get(base)
        given_up = 0
        if partial is None:
            given_up = self._expire(now)
            if len(self._partial) >= MAX_PARTIAL:
                oldest = next(iter(self._partial))
                given_up += len(self._partial.pop(oldest).pieces)
            partial = self._partial[base] = _Partial(count, now)
        elif partial.count != count:
            # Cannot come from the honest peer (it sealed both): drop the record.
            given_up += len(self._partial.pop(base).pieces) + 1
            return None, given_up
        partial.pieces[index] = piece
        if len(partial.pieces) < partial.count:
            return None, given_up
        del self._partial[base]
        record = b"".join(partial.pieces[i] for i in range(partial.count))
        if len(record) > MAX_PACKET:
            return None, given_up + partial.count
        return record, given_up

    def _expire(self, now: float) -> int:
        given_up = 0
        while self._partial:
            base, oldest = next(iter(self._partial.items()))
            if now - oldest.started < PARTIAL_TIMEOUT_S:
                break
            given_up += len(oldest.pieces)
            del self._partial[base]
        return given_up

    @property
    def partial_records(self) -> int:
        return len(self._partial)
