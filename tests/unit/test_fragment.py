"""Fragmentation: any unit up to the limit survives split + reassembly in any order;
inconsistent fragments are dropped with a reason; pending state stays bounded in units
and in bytes, and what is given up is counted."""

import os
import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peertap.sidecar import fragment
from peertap.sidecar.counters import Counters


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
    counters = Counters()
    r = fragment.Reassembler(clock=lambda: t[0], on_give_up=counters.drop)
    # Small chunks, so that the unit count and not the byte bound is what binds.
    for _ in range(fragment.MAX_PENDING + 10):
        r.add(fragment.split(bytes(3000), max_plaintext=2048)[0])
    assert len(r) == fragment.MAX_PENDING
    assert r.status()["evicted_units"] == counters.drops["fragment_evicted"] == 10
    t[0] = fragment.PENDING_TTL_S + 1
    r.add(fragment.split(bytes(3000), max_plaintext=2048)[0])
    assert len(r) == 1
    assert r.status()["expired_units"] == counters.drops["fragment_expired"] == fragment.MAX_PENDING


def test_a_key_holder_cannot_make_reassembly_hold_more_than_the_byte_bound():
    # The attacker opens units of the largest size and never finishes them; honest units
    # arrive in between. Memory is measured, not taken from the reassembler's own figures.
    counters = Counters()
    r = fragment.Reassembler(on_give_up=counters.drop)
    honest = [os.urandom(fragment.MAX_PLAINTEXT + 4096) for _ in range(8)]
    largest = os.urandom(fragment.MAX_UNIT)
    attack_units = 3 * fragment.MAX_PENDING_BYTES // fragment.MAX_UNIT
    every = attack_units // len(honest)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        peak_held = 0
        for i in range(attack_units):
            # Every fragment of a fresh unit but its last: a unit that never completes.
            for piece in fragment.split(largest)[:-1]:
                assert r.add(piece) is None
                peak_held = max(peak_held, r.held_bytes)
            if i % every == 0:
                unit = honest.pop()
                results = [r.add(p) for p in fragment.split(unit)]
                assert results[-1] == unit
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert not honest
    assert peak_held <= fragment.MAX_PENDING_BYTES
    # The bound, plus the pieces the test itself builds (one unit, 256 KiB, twice) and
    # the bookkeeping of at most MAX_PENDING units.
    assert peak <= fragment.MAX_PENDING_BYTES + 2 * fragment.MAX_UNIT + fragment.MAX_PENDING * 1024
    status = r.status()
    assert status["pending_bytes"] == r.held_bytes <= fragment.MAX_PENDING_BYTES
    assert 0 < status["pending_units"] < attack_units
    assert status["evicted_units"] == counters.drops["fragment_evicted"] > 0
    assert status["expired_units"] == 0


def test_many_tiny_chunks_count_against_the_bound_with_their_overhead():
    # 100-byte chunks: their bytes alone would stay far under the bound while the
    # objects holding them would not. One unit gets more chunks than the bound allows.
    counters = Counters()
    r = fragment.Reassembler(max_bytes=64 * 1024, on_give_up=counters.drop)
    fid = os.urandom(16)
    total = fragment.MAX_UNIT
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for offset in range(0, 200_000, 100):
            assert r.add(fragment.FRAG_HEADER.pack(fid, offset, total) + bytes(100)) is None
            assert r.held_bytes <= r.max_bytes
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak <= 64 * 1024 + 4096
    # Past the bound, that unit itself was given up and counted, and its later chunks
    # start a new unit under the same id.
    assert counters.drops["fragment_evicted"] >= 1
    assert r.status()["evicted_units"] == counters.drops["fragment_evicted"]


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
