"""`peertap lab up|exec|status|down` from the command line, one process per command."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import netns

from peertap.sidecar.lab import Lab, random_prefix

pytestmark = pytest.mark.netns


def peertap(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peertap.sidecar", "lab", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "lab-state"
    yield path
    Lab.teardown(path)


def test_lab_commands_build_enter_report_and_remove_a_lab(state: Path) -> None:
    prefix = random_prefix()
    up = peertap("up", "--topology", "relay", "--state", str(state), "--prefix", prefix)
    assert up.returncode == 0, up.stderr
    assert f"{prefix}r" in up.stdout
    for pod in ("a", "r", "b"):
        assert f"{pod:<6} http://127.0.0.1:9464/ui/  in netns {prefix}{pod}" in up.stdout

    inside = peertap("exec", "--state", str(state), "b", "--", "ip", "netns", "identify")
    assert inside.stdout.strip() == f"{prefix}b"
    failing = peertap("exec", "--state", str(state), "a", "--", "sh", "-c", "exit 7")
    assert failing.returncode == 7

    status = peertap("status", "--state", str(state))
    assert status.returncode == 0, status.stderr
    assert status.stdout.count(" ready ") == 3

    down = peertap("down", "--state", str(state))
    assert down.returncode == 0, down.stderr
    assert [n for n in netns.listnetns() if n.startswith(prefix)] == []
    assert not state.exists()


def test_exec_without_a_lab_names_the_state_directory(state: Path) -> None:
    result = peertap("exec", "--state", str(state), "a", "--", "true")
    assert result.returncode == 1
    assert str(state) in result.stderr
    assert "holds no lab" in result.stderr


def test_up_with_ipv6_builds_an_ipv6_only_underlay(state: Path) -> None:
    prefix = random_prefix()
    up = peertap(
        "up",
        "--topology",
        "pair",
        "--ipv6",
        "--no-nodes",
        "--state",
        str(state),
        "--prefix",
        prefix,
    )
    assert up.returncode == 0, up.stderr
    assert "fd31::1/64 (to b)" in up.stdout
    assert "fd31::2/64 (to a)" in up.stdout
    # At once: the lab adds IPv6 addresses without duplicate address detection, so they
    # are not left tentative (unusable) for the first seconds.
    ping = peertap("exec", "--state", str(state), "a", "--", "ping", "-c1", "-W5", "fd31::2")
    assert ping.returncode == 0, ping.stdout
    ipv4 = peertap(
        "exec", "--state", str(state), "a", "--", "ip", "-o", "-4", "addr", "show", "to-b"
    )
    assert ipv4.returncode == 0 and ipv4.stdout == ""
    assert peertap("down", "--state", str(state)).returncode == 0
