"""pytest fixtures over the real control plane; tests/conftest.py registers them.

`control_plane` is one ControlPlane for the whole session (it starts in a few
seconds from the cached build); tests that share it call `wipe()` afterwards
(the operator harness does) so each starts from empty namespaces.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator

import pytest

from . import binaries
from .controlplane import ControlPlane

log = logging.getLogger(__name__)

# Webhook Services the tests address, as NAME.NAMESPACE.svc: the operator harness's and
# the chart's (release "pt" in "peertap-system"). The API server resolves them to
# 127.0.0.1, where the operator under test listens.
LOOPBACK_NAMES = (
    "peertap-operator.peertap-system.svc",
    "pt-peertap-webhook.peertap-system.svc",
)


def apiserver_version() -> str:
    """`kube-apiserver --version` of the cached build, or why there is none."""
    try:
        found = binaries.find()
    except binaries.MissingBinary as err:
        return f"not available ({err})"
    done = subprocess.run(
        [str(found.kube_apiserver), "--version"], capture_output=True, text=True, check=False
    )
    return f"{done.stdout.strip()} ({found.kube_apiserver})"


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        binaries.find()
    except binaries.MissingBinary as err:
        pytest.fail(str(err), pytrace=False)
    cp = ControlPlane.start(
        tmp_path_factory.mktemp("kube"), "session", loopback_names=LOOPBACK_NAMES
    )
    log.warning(
        "kube-apiserver %s at %s, started in %.1f s", cp.version, cp.server, cp.startup_seconds
    )
    try:
        yield cp
    finally:
        cp.stop()
