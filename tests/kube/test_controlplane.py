"""The test control plane is a real one: RBAC enforced, controllers running, isolated."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import binaries
from .controlplane import ControlPlane, ControlPlaneError

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "kubectl"
NS = "cp-test"


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture
def cp(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    control_plane.wipe()
    done = kubectl(control_plane.kubeconfig, "create", "namespace", NS)
    assert done.returncode == 0 or "AlreadyExists" in done.stderr, done.stderr
    wait_for(
        "the namespace's default ServiceAccount",
        lambda: kubectl(control_plane.kubeconfig, "get", "sa", "default", "-n", NS).returncode == 0,
    )
    try:
        yield control_plane
    finally:
        control_plane.wipe()


def test_version_is_the_built_release(cp: ControlPlane) -> None:
    assert cp.version.startswith("v1.")
    assert cp.request("GET", "/version")["gitVersion"] == cp.version
    done = kubectl(cp.kubeconfig, "version", "-o", "yaml")
    assert yaml.safe_load(done.stdout)["serverVersion"]["gitVersion"] == cp.version


def test_a_service_account_has_exactly_the_rights_rbac_grants(cp: ControlPlane) -> None:
    assert kubectl(cp.kubeconfig, "create", "serviceaccount", "reader", "-n", NS).returncode == 0
    assert kubectl(cp.kubeconfig, "create", "secret", "generic", "s", "-n", NS).returncode == 0
    sa = cp.kubeconfig_for_service_account(NS, "reader")
    who = kubectl(sa, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert who.stdout == f"system:serviceaccount:{NS}:reader"

    # Without a binding the token authenticates but may do nothing.
    denied = kubectl(sa, "get", "secrets", "-n", NS)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()

    for args in (
        ("create", "role", "read-secrets", "--verb=get,list", "--resource=secrets", "-n", NS),
        (
            "create",
            "rolebinding",
            "reader",
            "--role=read-secrets",
            f"--serviceaccount={NS}:reader",
            "-n",
            NS,
        ),
    ):
        assert kubectl(cp.kubeconfig, *args).returncode == 0
    allowed = wait_for(
        "the binding to apply", lambda: kubectl(sa, "get", "secrets", "-n", NS).returncode == 0
    )
    assert allowed
    # The role grants reading, not writing, and only in its namespace.
    assert kubectl(sa, "delete", "secret", "s", "-n", NS).returncode != 0
    assert kubectl(sa, "get", "secrets", "-n", "default").returncode != 0


def test_controllers_run_deployments_and_collect_garbage(cp: ControlPlane) -> None:
    made = kubectl(
        cp.kubeconfig,
        "create",
        "deployment",
        "web",
        "--image=busybox:1.36",
        "--replicas=2",
        "-n",
        NS,
    )
    assert made.returncode == 0, made.stderr

    def pods() -> list[str]:
        out = kubectl(cp.kubeconfig, "get", "pods", "-n", NS, "-l", "app=web", "-o", "name")
        return out.stdout.split()

    assert len(wait_for("the Deployment's pods", lambda: len(pods()) == 2 and pods())) == 2
    rs = kubectl(cp.kubeconfig, "get", "rs", "-n", NS, "-o", "name").stdout.split()
    assert len(rs) == 1
    assert kubectl(cp.kubeconfig, "delete", "deployment", "web", "-n", NS).returncode == 0
    wait_for("garbage collection of the ReplicaSet and pods", lambda: not pods())


def test_wipe_empties_namespaces_but_keeps_what_the_cluster_needs(cp: ControlPlane) -> None:
    assert kubectl(cp.kubeconfig, "create", "configmap", "c", "-n", NS).returncode == 0
    assert cp.wipe() >= 1
    assert kubectl(cp.kubeconfig, "get", "configmap", "c", "-n", NS).returncode != 0
    assert kubectl(cp.kubeconfig, "get", "sa", "default", "-n", NS).returncode == 0
    assert kubectl(cp.kubeconfig, "get", "svc", "kubernetes", "-n", "default").returncode == 0
    assert kubectl(cp.kubeconfig, "get", "ns", NS).returncode == 0


def test_two_control_planes_run_side_by_side(cp: ControlPlane, tmp_path: Path) -> None:
    with ControlPlane.start(tmp_path, "second", controller_manager=False) as other:
        assert other.server != cp.server
        assert kubectl(other.kubeconfig, "create", "configmap", "only-here").returncode == 0
        assert kubectl(cp.kubeconfig, "get", "configmap", "only-here").returncode != 0
        # The two trust different CAs: one's admin is a stranger to the other.
        ctx = ssl.create_default_context(cafile=str(cp.pki.ca_cert))
        ctx.load_cert_chain(str(other.pki.admin_cert), str(other.pki.admin_key))
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{cp.server}/api/v1/namespaces", context=ctx, timeout=10)
        assert denied.value.code == 401


def test_missing_binaries_name_the_make_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERTAP_KUBE_CACHE", str(tmp_path))
    with pytest.raises(binaries.MissingBinary, match="make kube-bins"):
        binaries.find()


def _processes_under(path: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(cmdline)
    return found


def test_a_component_that_cannot_start_is_reported_with_its_log_and_nothing_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A build that fails at start, as one with a flag this fixture passes but it lacks.
    bin_dir = tmp_path / "cache" / binaries.kube_version() / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("kube-apiserver", "kube-controller-manager"):
        script = bin_dir / name
        script.write_text(
            "#!/bin/sh\necho 'Error: unknown flag: --endpoint-reconciler-type'\nexit 1\n"
        )
        script.chmod(0o755)
    monkeypatch.setenv("PEERTAP_KUBE_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "work"
    with pytest.raises(ControlPlaneError, match=r"kube-apiserver exited \(1\)[\s\S]*unknown flag"):
        ControlPlane.start(work, "broken")
    # etcd, started first, was stopped with it.
    assert _processes_under(work) == []
