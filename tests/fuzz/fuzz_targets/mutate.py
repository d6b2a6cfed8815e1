"""A small seed mutator: deterministic inputs for short runs without a coverage engine.

`inputs(seeds, count, seed)` yields every seed, then mutants of them: bit flips,
interesting bytes and integers (0, 1, 0x3f/0x40 and 0x7f/0x80 varint edges, all
ones, lengths), inserted, deleted, repeated and truncated ranges, and splices of two
seeds. Used by the pytest module and by `hack/fuzz.py --engine mutate`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

_BYTES = (0x00, 0x01, 0x02, 0x03, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xFE, 0xFF)
_INTS = (0, 1, 0x40, 0x4000, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x3FFFFFFF, 0xFFFFFFFF)


def _flip(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def _byte(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.choice(_BYTES)


def _int(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    size = rng.choice((1, 2, 4, 8))
    if len(data) >= size:
        pos = rng.randrange(len(data) - size + 1)
        value = rng.choice((*_INTS, len(data), len(data) - pos)) % (1 << (8 * size))
        data[pos : pos + size] = value.to_bytes(size, "big")


def _insert(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    pos = rng.randrange(len(data) + 1)
    data[pos:pos] = bytes(rng.choice(_BYTES) for _ in range(rng.randrange(1, 9)))


def _delete(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    if data:
        pos = rng.randrange(len(data))
        del data[pos : pos + rng.randrange(1, 17)]


def _repeat(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    if data:
        pos = rng.randrange(len(data))
        piece = data[pos : pos + rng.randrange(1, 65)]
        data[pos:pos] = piece * rng.randrange(1, 4)


def _truncate(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    del data[rng.randrange(len(data) + 1) :]


def _splice(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    other = rng.choice(seeds)
    cut = rng.randrange(len(data) + 1)
    data[cut:] = other[rng.randrange(len(other) + 1) :]


_MUTATIONS: tuple[Callable[[random.Random, bytearray, list[bytes]], None], ...] = (
    _flip,
    _flip,
    _byte,
    _byte,
    _int,
    _int,
    _insert,
    _delete,
    _repeat,
    _truncate,
    _splice,
)


def inputs(seeds: list[bytes], count: int, seed: int = 0) -> Iterator[bytes]:
    """The seeds, then mutants of them, `count` inputs in all (at least the seeds)."""
    rng = random.Random(seed)
    yield from seeds
    for _ in range(count - len(seeds)):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 5)):
            rng.choice(_MUTATIONS)(rng, data, seeds)
        yield bytes(data)
