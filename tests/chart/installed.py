"""The chart installed with real Helm into the test control plane, and its operator run
as the pod would run it: `python -m peertap.operator` with the installed Deployment's
arguments, authenticated as the chart's ServiceAccount, so RBAC decides what it may do.

Without kubelet, kube-proxy or cluster DNS, two things stand in for the cluster's
network: the operator process listens on free loopback ports instead of its container
ports, and the webhook configurations' `service` reference becomes a URL on the same
Service DNS name (which the test API server resolves to 127.0.0.1) at the operator's
port. The API server still verifies the operator's certificate for that name against
the caBundle the operator publishes.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
from kube.controlplane import ControlPlane, free_port

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "kubectl"
RELEASE = "pt"
NAMESPACE = "peertap-system"
FULLNAME = "pt-peertap"
WEBHOOK_HOST = f"{FULLNAME}-webhook.{NAMESPACE}.svc"
LISTEN_FLAGS = ("--webhook-listen", "--health-listen", "--metrics-listen", "--ui-listen")


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


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


@dataclass
class Installed:
    """A release of the chart in a control plane."""

    cp: ControlPlane
    values: dict[str, Any]

    def get(self, path: str) -> Any:
        return self.cp.request("GET", path)

    def deployment(self) -> dict[str, Any]:
        return dict(self.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{FULLNAME}"))

    def service_account(self) -> str:
        spec = self.deployment()["spec"]["template"]["spec"]
        return str(spec["serviceAccountName"])

    def route_webhooks_to(self, port: int) -> None:
        """The network stand-in: each webhook's Service reference becomes a URL on the
        Service's DNS name at the operator's loopback port (caBundle kept)."""
        for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
            path = f"/apis/admissionregistration.k8s.io/v1/{plural}/{FULLNAME}"
            ops: list[dict[str, Any]] = []
            for i, hook in enumerate(self.get(path)["webhooks"]):
                service = hook["clientConfig"]["service"]
                ops.append({"op": "remove", "path": f"/webhooks/{i}/clientConfig/service"})
                ops.append(
                    {
                        "op": "add",
                        "path": f"/webhooks/{i}/clientConfig/url",
                        "value": f"https://{WEBHOOK_HOST}:{port}{service.get('path', '/')}",
                    }
                )
            self.cp.request("PATCH", path, ops)


@contextlib.contextmanager
def install(cp: ControlPlane, values: dict[str, Any] | None = None) -> Iterator[Installed]:
    """`helm install pt helm/peertap -n peertap-system --create-namespace`, uninstalled after."""
    values = values or {}
    with helm.Config(kubeconfig_path=cp.kubeconfig, namespace=NAMESPACE) as cfg:
        cfg.install(
            ROOT / "helm" / "peertap",
            RELEASE,
            values,
            namespace=NAMESPACE,
            create_namespace=True,
            timeout=120,
        )
        try:
            yield Installed(cp=cp, values=values)
        finally:
            cfg.uninstall(RELEASE, ignore_not_found=True, timeout=60)


@dataclass
class OperatorProcess:
    popen: subprocess.Popen[str]
    ports: dict[str, int]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def healthy(self) -> bool:
        if self.popen.poll() is not None:
            raise AssertionError(f"operator exited {self.popen.returncode}:\n{self.output()}")
        try:
            url = f"http://127.0.0.1:{self.ports['--health-listen']}/healthz"
            with urllib.request.urlopen(url, timeout=2) as r:
                return bool(json.loads(r.read())["ok"])
        except OSError:
            return False


def operator_args(installed: Installed, ports: dict[str, int]) -> list[str]:
    """The installed Deployment's operator arguments, listening on loopback ports."""
    (container,) = installed.deployment()["spec"]["template"]["spec"]["containers"]
    args = []
    for arg in container.get("args", []):
        flag = arg.partition("=")[0]
        args.append(f"{flag}=127.0.0.1:{ports[flag]}" if flag in LISTEN_FLAGS else arg)
    # Listeners the chart leaves at their loopback default (the web UI) get a free port
    # too, so that several operator processes can run side by side.
    given = {arg.partition("=")[0] for arg in args}
    args += [f"{flag}=127.0.0.1:{ports[flag]}" for flag in LISTEN_FLAGS if flag not in given]
    return args


def loopback_ports() -> dict[str, int]:
    """A free loopback port for each of the operator's listen flags."""
    return {flag: free_port() for flag in LISTEN_FLAGS}


@contextlib.contextmanager
def run_operator(
    installed: Installed,
    kubeconfig: Path,
    workdir: Path,
    ports: dict[str, int],
    *,
    pod_name: str | None = None,
) -> Iterator[OperatorProcess]:
    """The operator as the pod runs it; `pod_name` is its POD_ID (its name among peers)."""
    log = workdir / f"operator{'-' + pod_name if pod_name else ''}.log"
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), PYTHONSAFEPATH="1")
    if pod_name is not None:
        env["POD_ID"] = pod_name
    with log.open("w") as out:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "peertap.operator",
                *operator_args(installed, ports),
                "--verbose",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    proc = OperatorProcess(popen=popen, ports=ports, log=log)
    try:
        yield proc
    finally:
        if popen.poll() is None:
            popen.terminate()
            try:
                popen.wait(30)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(30)


def vlan_members(cp: ControlPlane, vlan: str = "lab", namespace: str = "default") -> list[str]:
    """The pods a CryptoVLAN's status lists as members, sorted."""
    path = f"/apis/peertap.io/v1alpha1/namespaces/{namespace}/cryptovlans/{vlan}"
    status = cp.request("GET", path).get("status") or {}
    return sorted(m["pod"] for m in status.get("members") or [])
