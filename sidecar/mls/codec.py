"""TLS presentation language codec (RFC 9420 section 2.1).

Fixed-width big-endian integers, and variable-length vectors whose length is a
QUIC-style varint (RFC 9420 section 2.1.2): 1, 2 or 4 bytes with the two top
bits 00, 01, 10 giving the size; 0b11 is invalid; the length must use the
shortest encoding.

``Reader`` never raises IndexError or struct.error: every short read is a
``DecodeError``. Vector bodies are read in place by narrowing the reader's end
bound, so nested vectors cost no copies.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import TypeVar

from .errors import DecodeError, EncodeError

__all__ = ["MAX_VARINT", "Reader", "Writer", "encode_varint", "varint_size"]

T = TypeVar("T")

MAX_VARINT = (1 << 30) - 1

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def varint_size(value: int) -> int:
    """Number of bytes of the minimal varint encoding of ``value``."""
    if value < 0 or value > MAX_VARINT:
        raise EncodeError(f"varint out of range: {value}")
    if value < 0x40:
        return 1
    if value < 0x4000:
        return 2
    return 4


def encode_varint(value: int) -> bytes:
    """Minimal varint encoding of ``value`` (0 <= value < 2^30)."""
    size = varint_size(value)
    if size == 1:
        return bytes((value,))
    if size == 2:
        return _U16.pack(value | 0x4000)
    return _U32.pack(value | 0x80000000)


class Reader:
    """Sequential decoder over an immutable byte string."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._end = len(self._data)

    @property
    def pos(self) -> int:
        """Offset of the next unread byte in the original input."""
        return self._pos

    def slice(self, start: int, end: int) -> bytes:
        """Raw bytes of the original input between two ``pos`` values."""
        return self._data[start:end]

    def remaining(self) -> int:
        """Bytes left before the current bound (the enclosing vector, or the input end)."""
        return self._end - self._pos

    def done(self) -> None:
        """Raise DecodeError if any byte is left unread."""
        if self._pos != self._end:
            raise DecodeError(f"{self._end - self._pos} trailing bytes")

    def _take(self, n: int) -> int:
        start = self._pos
        if n < 0 or start + n > self._end:
            raise DecodeError(f"truncated: need {n} bytes, have {self._end - start}")
        self._pos = start + n
        return start

    def u8(self) -> int:
        start = self._take(1)
        return self._data[start]

    def u16(self) -> int:
        start = self._take(2)
        return int(_U16.unpack_from(self._data, start)[0])

    def u32(self) -> int:
        start = self._take(4)
        return int(_U32.unpack_from(self._data, start)[0])

    def u64(self) -> int:
        start = self._take(8)
        return int(_U64.unpack_from(self._data, start)[0])

    def varint(self) -> int:
        first = self.u8()
        prefix = first >> 6
        if prefix == 0:
            return first
        if prefix == 1:
            value = ((first & 0x3F) << 8) | self.u8()
            if value < 0x40:
                raise DecodeError("non-minimal varint")
            return value
        if prefix == 2:
            start = self._take(3)
            d = self._data
            value = ((first & 0x3F) << 24) | (d[start] << 16) | (d[start + 1] << 8) | d[start + 2]
            if value < 0x4000:
                raise DecodeError("non-minimal varint")
            return value
        raise DecodeError("invalid varint prefix 0b11")

    def raw(self, n: int) -> bytes:
        start = self._take(n)
        return self._data[start : start + n]

    def opaque(self) -> bytes:
        """``opaque data<V>``: varint length, then that many bytes."""
        return self.raw(self.varint())

    def vector(self, read_item: Callable[[Reader], T]) -> list[T]:
        """``T items<V>``: varint byte length, then items until exactly that many bytes."""
        length = self.varint()
        limit = self._pos + length
        if limit > self._end:
            raise DecodeError(
                f"truncated vector: need {length} bytes, have {self._end - self._pos}"
            )
        outer_end = self._end
        self._end = limit
        items: list[T] = []
        try:
            while self._pos < limit:
                before = self._pos
                items.append(read_item(self))
                if self._pos == before:
                    raise DecodeError("vector item consumed no bytes")
        finally:
            self._end = outer_end
        return items

    def optional(self, read_item: Callable[[Reader], T]) -> T | None:
        """``optional<T>``: a u8 presence flag (0 or 1), then T if present."""
        flag = self.u8()
        if flag == 0:
            return None
        if flag == 1:
            return read_item(self)
        raise DecodeError(f"invalid optional presence byte {flag}")

    def boolean(self) -> bool:
        flag = self.u8()
        if flag > 1:
            raise DecodeError(f"invalid bool {flag}")
        return flag == 1


class Writer:
    """Append-only encoder; ``getvalue()`` returns the bytes written so far."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._buf)

    def getvalue(self) -> bytes:
        return bytes(self._buf)

    def u8(self, v: int) -> None:
        if not 0 <= v <= 0xFF:
            raise EncodeError(f"u8 out of range: {v}")
        self._buf.append(v)

    def u16(self, v: int) -> None:
        if not 0 <= v <= 0xFFFF:
            raise EncodeError(f"u16 out of range: {v}")
        self._buf += _U16.pack(v)

    def u32(self, v: int) -> None:
        if not 0 <= v <= 0xFFFFFFFF:
            raise EncodeError(f"u32 out of range: {v}")
        self._buf += _U32.pack(v)

    def u64(self, v: int) -> None:
        if not 0 <= v <= 0xFFFFFFFFFFFFFFFF:
            raise EncodeError(f"u64 out of range: {v}")
        self._buf += _U64.pack(v)

    def varint(self, v: int) -> None:
        self._buf += encode_varint(v)

    def raw(self, b: bytes | bytearray | memoryview) -> None:
        self._buf += b

    def opaque(self, b: bytes | bytearray | memoryview) -> None:
        self._buf += encode_varint(len(b))
        self._buf += b

    def vector(self, items: Iterable[T], write_item: Callable[[Writer, T], None]) -> None:
        body = Writer()
        for item in items:
            write_item(body, item)
        self.opaque(body._buf)

    def optional(self, item: T | None, write_item: Callable[[Writer, T], None]) -> None:
        if item is None:
            self._buf.append(0)
        else:
            self._buf.append(1)
            write_item(self, item)

    def boolean(self, v: bool) -> None:
        self._buf.append(1 if v else 0)
