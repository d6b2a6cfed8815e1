"""Shared fixtures. `lab_factory` builds labs (peertap.sidecar.lab) torn down after the test.

    def test_ping_crosses_the_overlay(lab_factory):
        lab = lab_factory(topology("relay"))
        lab.wait_ready(timeout=30)
        lab.exec("a", ["ping", "-c1", lab.overlay_address("b")], check=True)

Each lab gets a fresh prefix and a state directory under the test's tmp_path;
the fixture tears every lab down also when the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kube.fixtures import apiserver_version, control_plane

from peertap.sidecar.lab import Lab, LabSpec

__all__ = ["control_plane"]

# Subprocesses started with `python -m ...` from the repository root would otherwise get
# the root first on sys.path, where the operator/ folder shadows the stdlib `operator`.
os.environ["PYTHONSAFEPATH"] = "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `make test` runs two workers (pytest-xdist, --dist loadgroup): the tests that run
    # network namespaces and peertap processes go one after the other on one worker, so
    # that no two labs share the two cores; everything else spreads over both.
    for item in items:
        if item.get_closest_marker("netns") is not None:
            item.add_marker(pytest.mark.xdist_group("netns"))


def pytest_report_header() -> str:
    # The Kubernetes the operator and chart tests run against (tests/kube).
    return f"kube-apiserver: {apiserver_version()}"


@pytest.fixture
def lab_factory(tmp_path: Path) -> Iterator[Callable[..., Lab]]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("the lab needs root and iproute2")
    labs: list[Lab] = []

    def make(spec: LabSpec, **kwargs: Any) -> Lab:
        kwargs.setdefault("state_dir", tmp_path / f"lab{len(labs)}")
        lab = Lab.up(spec, **kwargs)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.down()


DISSECTOR = Path(__file__).resolve().parents[1] / "deploy" / "wireshark" / "peertap.lua"


@pytest.fixture
def tshark() -> Callable[..., str]:
    """Runs tshark with the shipped PeerTap dissector; returns its output."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (hack/ensure-system-packages.sh)")

    def run(*args: str) -> str:
        r = subprocess.run(
            ["tshark", "-X", f"lua_script:{DISSECTOR}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout

    return run
