"""deserialization vectors: a variable-length vector header decodes to its length."""

from __future__ import annotations

from typing import Any

from ..codec import Reader, encode_varint
from ..errors import DecodeError
from .result import ConformanceError, check

__all__ = ["run_case"]


def run_case(case: dict[str, Any]) -> None:
    header = bytes.fromhex(case["vlbytes_header"])
    reader = Reader(header)
    try:
        length = reader.varint()
        reader.done()
    except DecodeError as err:
        raise ConformanceError("vlbytes_header", f"does not decode: {err}") from err
    check("length", length, case["length"])
    check("vlbytes_header (re-encoded)", encode_varint(length), header)
