"""Trunk record framing: `trunk.records.RecordSplitter` fed a byte stream in arbitrary chunks.

Input: one byte n (cut points, at most 31), n big-endian u16 cut positions, then the
stream. The stream is fed to a splitter in the chunks the cuts give. Asserts that the
splitter agrees with a plain reading of the whole stream: the same records, in order;
`error` set (a TrunkProtocolError) exactly when a complete length header is 0 or above
MAX_RECORD, and nothing delivered after it; otherwise the unfinished tail buffered.
Also that `records.encode` of the records read back gives the stream they came from.
"""

from __future__ import annotations

import itertools
import struct

from peertap.sidecar.trunk import records

NAME = "trunk_records"
_U16 = struct.Struct(">H")


def _reference(stream: bytes) -> tuple[list[bytes], bool, int]:
    """Records, whether the stream breaks the framing, bytes left over."""
    out: list[bytes] = []
    pos = 0
    while len(stream) - pos >= records.HEADER_SIZE:
        (length,) = struct.unpack_from(">I", stream, pos)
        if length == 0 or length > records.MAX_RECORD:
            return out, True, 0
        if pos + records.HEADER_SIZE + length > len(stream):
            break
        out.append(stream[pos + records.HEADER_SIZE : pos + records.HEADER_SIZE + length])
        pos += records.HEADER_SIZE + length
    return out, False, len(stream) - pos


def _chunks(data: bytes) -> tuple[list[bytes], bytes]:
    if not data:
        return [], b""
    n = min(data[0], 31)
    head = 1 + 2 * n
    stream = data[head:]
    cuts = sorted(
        {
            min(_U16.unpack_from(data, 1 + 2 * i)[0], len(stream))
            for i in range(n)
            if 3 + 2 * i <= len(data)
        }
    )
    edges = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)], stream


def encode_input(stream: bytes, cuts: list[int]) -> bytes:
    return bytes([len(cuts)]) + b"".join(_U16.pack(c) for c in cuts) + stream


def seeds() -> list[bytes]:
    small = [b"\x01\x02\x03\x04" * 10, b"x", bytes(300)]
    stream = records.encode(small)
    big = records.encode([bytes(records.MAX_RECORD), b"tail"])
    return [
        encode_input(stream, []),
        encode_input(stream, [1, 3, 5, 44, 45, 50]),
        encode_input(stream, list(range(0, 60, 2))),
        encode_input(stream + b"\x00\x00", [7]),
        encode_input(stream + b"\x00\x00\x00\x00", [2]),
        encode_input(big[:40000], [1, 2, 3, 9000]),
        encode_input(big, [2, 40000, 65535]),
    ]


def check(data: bytes) -> None:
    chunks, stream = _chunks(data)
    want, broken, left = _reference(stream)
    splitter = records.RecordSplitter()
    got: list[bytes] = []
    for chunk in chunks:
        got += splitter.feed(chunk)
        if splitter.error is not None:
            assert isinstance(splitter.error, records.TrunkProtocolError)
            assert splitter.feed(b"\x00\x00\x00\x01x") == []
    assert got == want, "records differ from a plain reading of the stream"
    assert (splitter.error is not None) == broken
    if not broken:
        assert splitter.buffered == left
        assert records.encode(got) == stream[: len(stream) - left]
