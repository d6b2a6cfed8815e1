"""Bundle plaintexts: what `join` makes `split` gives back, and any other bytes are a
BundleError with a counter label, never a crash or a partial result."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peertap.sidecar import bundle

units = st.lists(st.binary(min_size=1, max_size=bundle.MAX_UNIT), min_size=2, max_size=20)


@given(units)
def test_split_gives_back_what_join_made(parts: list[bytes]) -> None:
    assert bundle.split(bundle.join(parts)) == parts


@given(st.binary(max_size=600))
def test_any_bytes_split_into_units_that_tile_them_or_raise(data: bytes) -> None:
    try:
        parts = bundle.split(data)
    except bundle.BundleError as err:
        assert err.reason == "bundle_malformed"
        return
    assert len(parts) >= 2 and bundle.join(parts) == data


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"\x00\x01a", b"\x00\x01a\x00\x00", b"\x00\x01a\x00\x05abc", b"\x00\x02ab\x00"],
)
def test_short_empty_or_cut_bundles_are_malformed(data: bytes) -> None:
    with pytest.raises(bundle.BundleError):
        bundle.split(data)
