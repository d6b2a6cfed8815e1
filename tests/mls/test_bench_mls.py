"""hack/bench-mls.py runs end to end on a tiny group and reports every measurement."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "bench-mls.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_mls", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve annotations through sys.modules
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("out_of_band", [False, True])
def test_bench_mls_measures_a_four_member_group_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out_of_band: bool
) -> None:
    out = tmp_path / "bench.json"
    argv = ["--sizes", "4", "--repeat", "1", "--json", str(out)]
    if out_of_band:
        argv.append("--tree-out-of-band")

    assert _load_script().main(argv) == 0

    printed = capsys.readouterr().out
    assert "process ms" in printed
    assert "not measured" in printed  # no 1,000-member group, so no verdict on the target
    report = json.loads(out.read_text())
    assert report["ratchet_tree"] == ("out_of_band" if out_of_band else "group_info_extension")
    assert report["target"]["met"] is None
    (row,) = report["results"]
    assert row["members"] == 4
    assert row["path_ciphertexts"] == 3  # the committer encrypts to the three other old members
    assert row["state_bytes"] > 0 and row["commit_bytes"] > 0 and row["welcome_bytes"] > 0
    assert all(len(row["samples_ms"][k]) == 1 for k in ("commit", "process", "join"))


def test_bench_mls_rejects_a_group_size_below_two(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _load_script().main(["--sizes", "1"])
    assert "at least 2" in capsys.readouterr().err
