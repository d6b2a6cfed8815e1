"""Helpers shared by the tree / TreeKEM / group vector runners."""

from __future__ import annotations

from typing import Any

from .result import ConformanceError

__all__ = ["ConformanceError", "expect", "unhex"]


def unhex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def expect(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        if isinstance(actual, bytes | bytearray) and isinstance(expected, bytes | bytearray):
            actual, expected = actual.hex(), expected.hex()
        raise ConformanceError(f"{what}: got {actual!r}, want {expected!r}")
