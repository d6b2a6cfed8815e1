"""Fixtures for the end-to-end tests: localkube (hack/localkube) on real network namespaces.

The fabric's addresses and host routes are fixed, so runs take a machine-wide lock
(the one `make e2e-local` takes) and wait for each other.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

HACK = Path(__file__).resolve().parents[2] / "hack"
if str(HACK) not in sys.path:
    sys.path.insert(0, str(HACK))

LOCK = Path("/run/lock/peertap-e2e-local.lock")


@pytest.fixture
def fabric_lock() -> Iterator[None]:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("localkube needs root and nftables (hack/ensure-system-packages.sh)")
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def prefix() -> str:
    return "lt" + secrets.token_hex(2)


@pytest.fixture
def e2e_workdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A run's directory that unprivileged container users (group root) can walk into, which
    pytest's own tmp_path (mode 0700) is not. Kept when the test fails, for its logs."""
    path = Path(tempfile.mkdtemp(prefix="peertap-e2e-"))
    path.chmod(0o750)
    yield path
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"logs kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
