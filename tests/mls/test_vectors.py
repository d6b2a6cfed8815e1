"""Every vendored MLS working-group vector file, through the conformance dispatcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peertap.sidecar.mls import conformance

VECTORS = Path(__file__).resolve().parents[1] / "data" / "mls-vectors"

# Every vendored vector file; each must pass with zero failures.
FILES = sorted(p.name for p in VECTORS.glob("*.json"))


def test_all_fourteen_vector_files_are_vendored() -> None:
    assert len(FILES) == 14


@pytest.mark.parametrize("name", FILES)
def test_vector_file_passes(name: str) -> None:
    passed, failed = conformance.run_file(VECTORS / name)
    assert failed == 0
    assert passed > 0


def test_every_vendored_file_is_a_recognised_format() -> None:
    files = sorted(VECTORS.glob("*.json"))
    assert len(files) >= 14
    for path in files:
        fmt = conformance.detect_format(json.loads(path.read_text()))
        assert fmt in conformance.FORMATS


def test_format_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    renamed = tmp_path / "whatever.json"
    renamed.write_text((VECTORS / "tree-math.json").read_text())
    assert conformance.run_file(renamed) == (10, 0)


def test_unrecognised_file_is_reported_and_fails_main(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps([{"foo": 1}]))
    with pytest.raises(conformance.UnrecognisedFormatError):
        conformance.run_file(odd)
    good = VECTORS / "tree-math.json"
    assert conformance.main([str(good)]) == 0
    assert conformance.main([str(good), str(odd)]) != 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{good}: 10 passed, 0 failed"
    assert out[-1].startswith(f"{odd}: unrecognised format")


def test_a_mismatch_counts_as_a_failed_case(tmp_path: Path) -> None:
    cases = json.loads((VECTORS / "tree-math.json").read_text())
    cases[1]["root"] += 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(cases))
    assert conformance.run_file(bad) == (9, 1)
    assert conformance.main([str(bad)]) != 0
