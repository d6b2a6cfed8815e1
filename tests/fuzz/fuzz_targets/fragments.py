"""Fragment reassembly: `fragment.Reassembler.add` fed sequences of fragments.

Input: 14-byte fragment descriptors, each: unit selector (u16, the fragment id),
clock step (u8, tenths of a second), offset (u32), total (u32), chunk length (u24).
The chunk is that slice of one fixed pseudo-random unit, so a unit that completes
must be exactly its first `total` bytes. Asserts that `add` returns None or a
correct unit, or raises FragmentError, and that the pending units stay within
MAX_PENDING and their bytes within the reassembler's byte bound (small here, 1 MiB, so
that inputs reach eviction). An input shorter than a descriptor picks a unit size instead: the
fragments `fragment.split` makes of it must reassemble to the unit.
"""

from __future__ import annotations

import hashlib
import struct

from peertap.sidecar import fragment

NAME = "fragments"
_DESC = struct.Struct(">HBII")  # then the chunk length, u24
_DESC_LEN = _DESC.size + 3
_UNIT = hashlib.shake_128(b"peertap fragment unit").digest(fragment.MAX_UNIT + 4096)
_REASONS = {
    "fragment_short",
    "fragment_bounds",
    "fragment_mismatch",
    "fragment_duplicate",
    "fragment_overlap",
}


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def descriptor(unit: int, step: int, offset: int, total: int, length: int) -> bytes:
    return _DESC.pack(unit, step, offset, total) + length.to_bytes(3, "big")


def _descriptors(data: bytes) -> list[tuple[int, int, int, int, int]]:
    out = []
    for pos in range(0, len(data) - _DESC_LEN + 1, _DESC_LEN):
        unit, step, offset, total = _DESC.unpack_from(data, pos)
        length = int.from_bytes(data[pos + _DESC.size : pos + _DESC_LEN], "big")
        out.append((unit, step, offset, total, length))
    return out


def seeds() -> list[bytes]:
    c = fragment.MAX_CHUNK
    big = 200_000
    two = fragment.MAX_PLAINTEXT + 1
    return [
        descriptor(1, 0, 0, two, c) + descriptor(1, 1, c, two, two - c),
        descriptor(2, 0, c, two, two - c) + descriptor(2, 0, 0, two, c),
        b"".join(descriptor(3, 2, o, big, min(c, big - o)) for o in range(0, big, c)),
        descriptor(4, 0, 0, two, 100)
        + descriptor(5, 0, 0, two, c)
        + descriptor(4, 0, 100, two, two - 100),
        descriptor(6, 0, 0, two, c) + descriptor(6, 25, c, two, two - c),
        descriptor(7, 0, 0, two, 40_000) + descriptor(7, 0, 30_000, two, two - 40_000),
        descriptor(8, 0, 0, two, c) + descriptor(8, 0, 0, two, c),
        descriptor(9, 0, 0, two, 0),
        b"",
        b"\xff" * (_DESC_LEN - 1),
    ]


def check(data: bytes) -> None:
    clock = _Clock()
    reassembler = fragment.Reassembler(clock=clock, max_bytes=1024 * 1024)
    for unit, step, offset, total, length in _descriptors(data):
        clock.now += step / 10
        fid = unit.to_bytes(2, "big") * 8
        chunk = _UNIT[offset : offset + min(length, fragment.MAX_UNIT + 1)]
        try:
            whole = reassembler.add(fragment.FRAG_HEADER.pack(fid, offset, total) + chunk)
        except fragment.FragmentError as err:
            assert err.reason in _REASONS, err.reason
            continue
        finally:
            assert len(reassembler) <= fragment.MAX_PENDING
            assert 0 <= reassembler.held_bytes <= reassembler.max_bytes
        if whole is not None:
            assert whole == _UNIT[:total], "a reassembled unit differs from what was fragmented"
    if len(data) >= _DESC_LEN:
        return
    # No descriptor: a unit of a size the input picks, split and reassembled backwards.
    size = (
        fragment.MAX_PLAINTEXT
        + 1
        + int.from_bytes(data, "big") % (fragment.MAX_UNIT - fragment.MAX_PLAINTEXT)
    )
    parts = fragment.split(_UNIT[:size])
    fresh = fragment.Reassembler(clock=clock)
    results = [fresh.add(p) for p in reversed(parts)]
    assert results[-1] == _UNIT[:size] and not any(results[:-1])
