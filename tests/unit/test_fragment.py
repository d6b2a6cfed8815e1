"""Fragmentation: any unit up to the limit survives split + reassembly in any order;
inconsistent fragments are dropped with a reason; pending state stays bounded."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peertap.sidecar import fragment


@settings(max_examples=25)
@given(size=st.integers(fragment.MAX_PLAINTEXT + 1, 3 * fragment.MAX_PLAINTEXT), seed=st.integers())
def test_split_then_reassemble_in_any_order(size, seed):
    unit = random.Random(seed).randbytes(size)
    pieces = fragment.split(unit)
    random.Random(seed).shuffle(pieces)
    r = fragment.Reassembler()
    results = [r.add(p) for p in pieces]
    assert results[:-1] == [None] * (len(pieces) - 1)
    assert results[-1] == unit
    assert len(r) == 0


def test_duplicate_fragment_is_refused():
    pieces = fragment.split(bytes(fragment.MAX_PLAINTEXT + 10))
    r = fragment.Reassembler()
    r.add(pieces[0])
    with pytest.raises(fragment.FragmentError) as info:
        r.add(pieces[0])
    assert info.value.reason == "fragment_duplicate"


def test_fragment_claiming_a_huge_unit_is_refused():
    bad = fragment.FRAG_HEADER.pack(b"f" * 16, 0, fragment.MAX_UNIT + 1) + b"x"
    with pytest.raises(fragment.FragmentError):
        fragment.Reassembler().add(bad)


def test_pending_units_are_bounded_and_expire():
    t = [0.0]
    r = fragment.Reassembler(clock=lambda: t[0])
    for _ in range(fragment.MAX_PENDING + 10):
        r.add(fragment.split(bytes(fragment.MAX_PLAINTEXT + 1))[0])
    assert len(r) == fragment.MAX_PENDING
    t[0] = fragment.PENDING_TTL_S + 1
    r.add(fragment.split(bytes(fragment.MAX_PLAINTEXT + 1))[0])
    assert len(r) == 1


def test_overlapping_fragments_that_add_up_to_the_total_are_refused():
    # Found by fuzzing: 40000 bytes at 0 and 25452 bytes at 30000 add up to the
    # total of 65452, but overlap by 10000 and leave the last 10000 bytes unsent;
    # the unit used to come out with the second chunk in the wrong place.
    total = fragment.MAX_PLAINTEXT + 1
    fid = b"o" * 16
    r = fragment.Reassembler()
    assert r.add(fragment.FRAG_HEADER.pack(fid, 0, total) + b"a" * 40_000) is None
    with pytest.raises(fragment.FragmentError) as info:
        r.add(fragment.FRAG_HEADER.pack(fid, 30_000, total) + b"b" * (total - 40_000))
    assert info.value.reason == "fragment_overlap"
    assert len(r) == 0
