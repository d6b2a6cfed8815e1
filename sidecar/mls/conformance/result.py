"""The error every vector runner raises when a computed value differs from the vector."""

from __future__ import annotations

__all__ = ["ConformanceError", "check"]


class ConformanceError(Exception):
    """A value computed by the implementation differs from the test vector.

    The message names the vector field that mismatched (e.g. ``epochs[2].joiner_secret``).
    """

    def __init__(self, field: str, detail: str = "") -> None:
        self.field = field
        super().__init__(f"{field}: {detail}" if detail else f"{field}: mismatch")


def check(field: str, actual: object, expected: object) -> None:
    """Raise ConformanceError naming ``field`` unless ``actual == expected``."""
    if actual != expected:
        if isinstance(actual, bytes | bytearray) and isinstance(expected, bytes | bytearray):
            actual, expected = actual.hex(), expected.hex()
        raise ConformanceError(field, f"got {actual!r}, want {expected!r}")
