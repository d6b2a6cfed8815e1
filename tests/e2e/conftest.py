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
