"""Every case of the primitive vector files passes its runner (all seven suites)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from peertap.sidecar.mls.conformance import (
    crypto_basics,
    deserialization,
    key_schedule,
    message_protection,
    messages,
    psk_secret,
    secret_tree,
    transcript_hashes,
)
from peertap.sidecar.mls.conformance.result import ConformanceError

VECTORS = Path(__file__).resolve().parents[1] / "data" / "mls-vectors"

RUNNERS = {
    "crypto-basics.json": crypto_basics,
    "deserialization.json": deserialization,
    "key-schedule.json": key_schedule,
    "message-protection.json": message_protection,
    "messages.json": messages,
    "psk_secret.json": psk_secret,
    "secret-tree.json": secret_tree,
    "transcript-hashes.json": transcript_hashes,
}


def _cases() -> list[Any]:
    params = []
    for name, runner in RUNNERS.items():
        cases = json.loads((VECTORS / name).read_text())
        for i, case in enumerate(cases):
            params.append(pytest.param(runner, case, id=f"{name}[{i}]"))
    return params


@pytest.mark.parametrize(("runner", "case"), _cases())
def test_vector_case_passes(runner: Any, case: dict[str, Any]) -> None:
    runner.run_case(case)


@pytest.mark.parametrize(
    "name", [n for n in RUNNERS if n not in ("messages.json", "deserialization.json")]
)
def test_suite_vector_files_cover_all_seven_suites(name: str) -> None:
    cases = json.loads((VECTORS / name).read_text())
    assert {case["cipher_suite"] for case in cases} == set(range(1, 8))


def test_a_wrong_vector_value_fails_naming_the_field() -> None:
    case = json.loads((VECTORS / "key-schedule.json").read_text())[0]
    case["epochs"][1]["exporter"]["secret"] = "00" * 32
    with pytest.raises(ConformanceError, match=r"epochs\[1\]\.exporter\.secret"):
        key_schedule.run_case(case)
