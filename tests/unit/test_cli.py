"""The `peertap` command line, run as a real subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from peertap.sidecar import identity, ids

VECTORS = Path(__file__).resolve().parents[1] / "data" / "mls-vectors"


def peertap(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    # Not from the repository root: `-m` puts the working directory first on sys.path,
    # where the operator/ folder would shadow the standard library's `operator`.
    return subprocess.run(
        [sys.executable, "-m", "peertap.sidecar", *args],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def test_keygen_writes_a_private_key_and_prints_its_ids(tmp_path: Path) -> None:
    out = peertap("keygen", "--out", str(tmp_path / "k"), check=True).stdout
    ident = identity.load(tmp_path / "k")
    assert f"peer-id: {ident.peer_id}" in out
    assert f"public-key: {ident.public_hex}" in out
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    again = peertap("keygen", "--out", str(tmp_path / "k"))
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr


def test_vlan_id_matches_the_library_and_rejects_bad_creators() -> None:
    creator = "ab" * 32
    out = peertap("vlan-id", "--creator", creator, "--label", "lab", check=True).stdout
    assert out.strip() == ids.vlan_id_hex(creator, "lab")
    bad = peertap("vlan-id", "--creator", "xyz", "--label", "lab")
    assert bad.returncode == 2 and "64 hex" in bad.stderr


def test_config_schema_is_json_and_check_names_the_bad_field(tmp_path: Path) -> None:
    schema = json.loads(peertap("config", "schema", check=True).stdout)
    assert "vlans" in schema["properties"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"relay": {"enabled": True}, "api": {"listen": 5}}))
    r = peertap("config", "check", str(bad))
    assert r.returncode == 2 and "api.listen" in r.stderr


def test_run_with_an_invalid_config_exits_2_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "node.json"
    bad.write_text("{}")
    r = peertap("run", "--config", str(bad))
    assert r.returncode == 2
    assert "must enable relay" in r.stderr and "Traceback" not in r.stderr


def test_run_with_a_missing_key_file_fails_cleanly(tmp_path: Path) -> None:
    cfg = tmp_path / "node.json"
    cfg.write_text(json.dumps({"relay": {"enabled": True}, "identity": {"key_file": "nope"}}))
    r = peertap("run", "--config", str(cfg))
    assert r.returncode == 1
    assert "cannot read key file" in r.stderr and "Traceback" not in r.stderr


def test_status_without_a_node_says_where_it_looked() -> None:
    r = peertap("status", "--api", "127.0.0.1:1", "--timeout", "2")
    assert r.returncode == 1 and "127.0.0.1:1" in r.stderr


def test_mls_vectors_command_passes_every_vendored_file() -> None:
    files = sorted(str(p) for p in VECTORS.glob("*.json"))
    assert len(files) == 14
    r = peertap("mls-vectors", *files)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == len(files)
    assert all(line.endswith(" failed") and ", 0 failed" in line for line in lines)


@pytest.mark.parametrize("content", ["{not json", json.dumps({"cases": "nope"})])
def test_mls_vectors_command_fails_on_unreadable_files(tmp_path: Path, content: str) -> None:
    f = tmp_path / "odd.json"
    f.write_text(content)
    assert peertap("mls-vectors", str(f)).returncode != 0
