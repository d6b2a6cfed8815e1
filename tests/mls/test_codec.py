"""TLS presentation language codec: round trips, varint rules, truncation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peertap.sidecar.mls import codec
from peertap.sidecar.mls.errors import DecodeError, EncodeError


@pytest.mark.parametrize(
    ("value", "encoding"),
    [
        (0, "00"),
        (37, "25"),
        (63, "3f"),
        (64, "4040"),
        (15293, "7bbd"),
        (16383, "7fff"),
        (16384, "80004000"),
        (494878333, "9d7f3e7d"),
        ((1 << 30) - 1, "bfffffff"),
    ],
)
def test_varint_encodes_minimally_and_decodes_back(value: int, encoding: str) -> None:
    assert codec.encode_varint(value).hex() == encoding
    reader = codec.Reader(bytes.fromhex(encoding))
    assert reader.varint() == value
    reader.done()


@pytest.mark.parametrize("encoding", ["4025", "4000", "403f", "80000025", "80003fff", "80000000"])
def test_non_minimal_varint_is_rejected(encoding: str) -> None:
    with pytest.raises(DecodeError, match="non-minimal"):
        codec.Reader(bytes.fromhex(encoding)).varint()


@pytest.mark.parametrize("encoding", ["c0", "c000000000000001", "ffffffff"])
def test_varint_prefix_0b11_is_rejected(encoding: str) -> None:
    with pytest.raises(DecodeError, match="0b11"):
        codec.Reader(bytes.fromhex(encoding)).varint()


@pytest.mark.parametrize("value", [-1, 1 << 30])
def test_varint_out_of_range_cannot_be_encoded(value: int) -> None:
    with pytest.raises(EncodeError):
        codec.Writer().varint(value)


@pytest.mark.parametrize(
    ("method", "data"),
    [
        ("u8", ""),
        ("u16", "01"),
        ("u32", "010203"),
        ("u64", "01020304050607"),
        ("varint", ""),
        ("varint", "40"),
        ("varint", "800000"),
        ("opaque", "03aabb"),
        ("opaque", ""),
    ],
)
def test_truncated_input_raises_decode_error(method: str, data: str) -> None:
    with pytest.raises(DecodeError):
        getattr(codec.Reader(bytes.fromhex(data)), method)()


def test_truncated_raw_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        codec.Reader(b"ab").raw(3)


def test_vector_length_beyond_input_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        codec.Reader(bytes.fromhex("0500010002")).vector(codec.Reader.u16)


def test_vector_item_crossing_the_vector_bound_raises_decode_error() -> None:
    # Vector body is 3 bytes, but items are u16: the second item would cross it.
    reader = codec.Reader(bytes.fromhex("03000100ff"))
    with pytest.raises(DecodeError):
        reader.vector(codec.Reader.u16)


def test_vector_bound_is_restored_after_a_nested_read() -> None:
    writer = codec.Writer()
    writer.vector([[1, 2], [], [3]], lambda w, inner: w.vector(inner, codec.Writer.u8))
    writer.u32(7)
    reader = codec.Reader(writer.getvalue())
    assert reader.vector(lambda r: r.vector(codec.Reader.u8)) == [[1, 2], [], [3]]
    assert reader.u32() == 7
    reader.done()


def test_vector_of_zero_width_items_is_rejected_not_looped() -> None:
    with pytest.raises(DecodeError):
        codec.Reader(bytes.fromhex("0100")).vector(lambda r: None)


def test_optional_presence_byte_must_be_zero_or_one() -> None:
    assert codec.Reader(b"\x00").optional(codec.Reader.u8) is None
    assert codec.Reader(b"\x01\x07").optional(codec.Reader.u8) == 7
    with pytest.raises(DecodeError):
        codec.Reader(b"\x02\x07").optional(codec.Reader.u8)


def test_done_rejects_trailing_bytes() -> None:
    reader = codec.Reader(b"\x01\x02")
    reader.u8()
    assert reader.remaining() == 1
    with pytest.raises(DecodeError, match="trailing"):
        reader.done()


@pytest.mark.parametrize(("method", "value"), [("u8", 256), ("u16", 1 << 16), ("u32", -1)])
def test_out_of_range_integers_cannot_be_encoded(method: str, value: int) -> None:
    with pytest.raises(EncodeError):
        getattr(codec.Writer(), method)(value)


@given(st.integers(min_value=0, max_value=codec.MAX_VARINT))
def test_varint_round_trip(value: int) -> None:
    encoded = codec.encode_varint(value)
    assert len(encoded) == codec.varint_size(value)
    reader = codec.Reader(encoded)
    assert reader.varint() == value
    reader.done()


_record = st.tuples(
    st.integers(0, 0xFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFFFFFFFFFF),
    st.binary(max_size=300),
    st.lists(st.binary(max_size=80), max_size=6),
    st.none() | st.integers(0, 0xFFFF),
)


def _write_record(w: codec.Writer, rec: tuple) -> None:  # type: ignore[type-arg]
    a, b, c, d, blob, blobs, opt = rec
    w.u8(a)
    w.u16(b)
    w.u32(c)
    w.u64(d)
    w.opaque(blob)
    w.vector(blobs, codec.Writer.opaque)
    w.optional(opt, codec.Writer.u16)


def _read_record(r: codec.Reader) -> tuple:  # type: ignore[type-arg]
    return (
        r.u8(),
        r.u16(),
        r.u32(),
        r.u64(),
        r.opaque(),
        r.vector(codec.Reader.opaque),
        r.optional(codec.Reader.u16),
    )


@given(st.lists(_record, max_size=5))
def test_nested_structures_round_trip(records: list) -> None:  # type: ignore[type-arg]
    writer = codec.Writer()
    writer.vector(records, _write_record)
    encoded = writer.getvalue()
    reader = codec.Reader(encoded)
    assert reader.vector(_read_record) == records
    reader.done()


@given(st.lists(_record, min_size=1, max_size=3), st.data())
def test_every_strict_prefix_of_an_encoding_raises_decode_error(
    records: list,  # type: ignore[type-arg]
    data: st.DataObject,
) -> None:
    writer = codec.Writer()
    writer.vector(records, _write_record)
    encoded = writer.getvalue()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    reader = codec.Reader(encoded[:cut])
    with pytest.raises(DecodeError):
        reader.vector(_read_record)
        reader.done()
