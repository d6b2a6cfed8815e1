"""Record framing on a trunk stream: 4-byte big-endian length, then the record bytes.

`encode` packs many records into one buffer (one stream write); `RecordSplitter`
turns arbitrarily chunked stream reads back into records. The splitter parses
complete records straight out of each read chunk and keeps only the unfinished
tail, so a record is copied once (out of the chunk) unless it straddles reads.
"""

from __future__ import annotations

import struct

MAX_RECORD = 65535 + 512
"""Largest record accepted on a trunk: a 64 KiB super-frame plus PeerTap headers."""

HEADER_SIZE = 4
_HEADER = struct.Struct(">I")
_pack_header = _HEADER.pack
_unpack_header_from = _HEADER.unpack_from


class TrunkRecordError(ValueError):
    """A record handed to the trunk for sending is empty or larger than MAX_RECORD."""


class TrunkProtocolError(Exception):
    """The peer sent a record length of 0 or over MAX_RECORD: the stream is unusable."""

    def __init__(self, length: int) -> None:
        super().__init__(f"record length {length} outside 1..{MAX_RECORD}")
        self.length = length


def check_record(record: bytes) -> None:
    if not 0 < len(record) <= MAX_RECORD:
        raise TrunkRecordError(f"record of {len(record)} bytes outside 1..{MAX_RECORD}")


def frame_parts(records: list[bytes]) -> list[bytes]:
    """Header and body of each record, in order, ready for `b"".join`."""
    parts: list[bytes] = []
    append = parts.append
    for record in records:
        check_record(record)
        append(_pack_header(len(record)))
        append(record)
    return parts


def encode(records: list[bytes]) -> bytes:
    """All records framed back to back, as one buffer for one stream write."""
    return b"".join(frame_parts(records))


class RecordSplitter:
    """Splits a byte stream into records; feed it each read, get the complete records.

    A length of 0 or over MAX_RECORD sets `error`: `feed` still returns the
    records that came before it, and from then on returns nothing, because the
    stream position is lost. The reader must check `error` after each feed.
    """

    __slots__ = ("_pending", "error")

    def __init__(self) -> None:
        self._pending = bytearray()
        self.error: TrunkProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held back as the start of an unfinished record."""
        return len(self._pending)

    def feed(self, chunk: bytes) -> list[bytes]:
        out: list[bytes] = []
        if self.error is not None:
            return out
        try:
            self._split(chunk, out)
        except TrunkProtocolError as err:
            self.error = err
            self._pending.clear()
        return out

    def _split(self, chunk: bytes, out: list[bytes]) -> None:
        pos = 0
        if self._pending:
            pos = self._complete_pending(chunk, out)
            if not out:
                return
        end = len(chunk)
        view = memoryview(chunk)
        try:
            while end - pos >= HEADER_SIZE:
                length: int = _unpack_header_from(chunk, pos)[0]
                _check_length(length)
                stop = pos + HEADER_SIZE + length
                if stop > end:
                    break
                out.append(bytes(view[pos + HEADER_SIZE : stop]))
                pos = stop
            if pos < end:
                self._pending += view[pos:]
        finally:
            view.release()

    def _complete_pending(self, chunk: bytes, out: list[bytes]) -> int:
        """Top up the unfinished record from `chunk`; return how much of it was used.

        Copies only the bytes that belong to the unfinished record, so a large read
        that completes a small tail is not copied as a whole.
        """
        pending = self._pending
        used = 0
        if len(pending) < HEADER_SIZE:
            used = min(HEADER_SIZE - len(pending), len(chunk))
            pending += chunk[:used]
            if len(pending) < HEADER_SIZE:
                return used
        length: int = _unpack_header_from(pending, 0)[0]
        _check_length(length)
        missing = HEADER_SIZE + length - len(pending)
        take = min(missing, len(chunk) - used)
        pending += chunk[used : used + take]
        used += take
        if take == missing:
            with memoryview(pending) as view:
                out.append(bytes(view[HEADER_SIZE:]))
            pending.clear()
        return used


def _check_length(length: int) -> None:
    if length == 0 or length > MAX_RECORD:
        raise TrunkProtocolError(length)
