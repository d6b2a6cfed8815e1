"""Every fuzz target (tests/fuzz/fuzz_targets/) on a short budget: its seeds, then a few
thousand deterministic mutants of them. `make fuzz` runs the same targets coverage
guided with a large budget; this keeps them working and catches regressions in CI."""

from __future__ import annotations

import pytest
from fuzz_targets import TARGETS, load
from fuzz_targets.mutate import inputs

INPUTS_PER_TARGET = 5000


@pytest.mark.parametrize("name", TARGETS)
def test_target_survives_its_seeds_and_their_mutants(name: str) -> None:
    target = load(name)
    seeds = target.seeds()
    assert seeds, f"{name} has no seed corpus"
    for number, data in enumerate(inputs(seeds, INPUTS_PER_TARGET, seed=len(name))):
        try:
            target.check(data)
        except Exception as err:
            kind = "seed" if number < len(seeds) else "mutant"
            pytest.fail(f"{name}: {kind} {number} raised {err!r}; input: {data.hex()}")


@pytest.mark.parametrize("name", TARGETS)
def test_target_says_what_it_feeds_and_asserts(name: str) -> None:
    target = load(name)
    assert target.name == name
    assert "assert" in target.doc.lower(), f"{name}'s docstring does not say what it asserts"
