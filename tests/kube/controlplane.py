"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager.

Like controller-runtime's envtest, but with the controller manager (garbage
collection, Deployments -> ReplicaSets -> Pods, service accounts, namespace
deletion) and with authorization on: RBAC is enforced for every identity except
the admin, which is in `system:masters`.

    cp = ControlPlane.start(tmp_path, "east")
    subprocess.run(["kubectl", "--kubeconfig", cp.kubeconfig, "get", "ns"])
    sa = cp.kubeconfig_for_service_account("peertap-system", "peertap-operator")
    ...
    cp.stop()

Everything listens on free loopback ports and lives in `workdir/name/`, so any
number of control planes run side by side. There is no kubelet: Pods stay
Pending unless something plays the node. The API server resolves the names in
`loopback_names` to 127.0.0.1 (it runs in its own mount namespace with a private
/etc/hosts), so webhooks addressed as `https://NAME.NAMESPACE.svc:PORT/...` reach
an operator on this machine and are verified against its certificate.

The components get SIGKILL when the thread that started them ends (so a killed
test run leaves nothing behind): start a control plane from a thread that outlives
it, such as the main thread.

`python -m kube.controlplane DIR` (with tests/ on PYTHONPATH) runs one until
interrupted and prints its kubeconfig.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from . import binaries, pki

SERVICE_CIDR = "10.96.0.0/16"
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
# Objects every namespace (or the cluster) keeps across ControlPlane.wipe().
_KEPT = (
    ("serviceaccounts", "default"),
    ("configmaps", "kube-root-ca.crt"),
    ("services/specs", "kubernetes"),
    ("services/endpoints", "kubernetes"),
    ("endpointslices", "kubernetes"),
)
_WIPED_CLUSTER_SCOPED = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
ISSUER = "https://kubernetes.default.svc.cluster.local"


class ControlPlaneError(RuntimeError):
    """A component did not start, or the API server refused a request."""


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    _log_file: IO[bytes]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            # Each component leads its own process group (start_new_session), so
            # this reaches a wrapper's child too and nothing else.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        self._log_file.close()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the process that started it dies,
    so a killed test run leaves no API server or etcd behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _spawn(name: str, argv: Sequence[str], log: Path) -> _Process:
    log_file = log.open("ab")
    popen = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    return _Process(name=name, popen=popen, log=log, _log_file=log_file)


@dataclass
class ControlPlane:
    """A running control plane; `start()` makes one, `stop()` ends every process."""

    name: str
    directory: Path
    server: str
    kubeconfig: Path
    version: str
    etcd_endpoint: str
    pki: pki.Pki
    startup_seconds: float = 0.0
    service_cidr: str = SERVICE_CIDR
    _processes: list[_Process] = field(default_factory=list, repr=False)

    @classmethod
    def start(
        cls,
        workdir: Path,
        name: str = "peertap-test",
        *,
        controller_manager: bool = True,
        loopback_names: Sequence[str] = (),
        timeout: float = 90.0,
        service_cidr: str = SERVICE_CIDR,
    ) -> ControlPlane:
        """Starts etcd, kube-apiserver (and kube-controller-manager) under workdir/name/."""
        began = time.monotonic()
        bins = binaries.find()
        directory = Path(workdir) / name
        directory.mkdir(parents=True, exist_ok=True)
        keys = pki.write(directory / "pki")
        etcd_port, etcd_peer_port, api_port = free_port(), free_port(), free_port()
        server = f"https://127.0.0.1:{api_port}"
        cp = cls(
            name=name,
            directory=directory,
            server=server,
            kubeconfig=directory / "admin.kubeconfig",
            version="",
            etcd_endpoint=f"http://127.0.0.1:{etcd_port}",
            pki=keys,
            service_cidr=service_cidr,
        )
        atexit.register(cp.stop)
        try:
            cp._write_admin_kubeconfig()
            cp._start_etcd(bins, etcd_peer_port, began + timeout)
            cp._start_apiserver(bins, api_port, loopback_names, began + timeout)
            if controller_manager:
                cp._start_controller_manager(bins)
            cp._wait_for_default_service_account(began + timeout, controller_manager)
        except BaseException:
            cp.stop()
            raise
        cp.version = str(cp.request("GET", "/version")["gitVersion"])
        cp.startup_seconds = time.monotonic() - began
        return cp

    # -- components ---------------------------------------------------------

    def _start_etcd(self, bins: binaries.Binaries, peer_port: int, deadline: float) -> None:
        peer = f"http://127.0.0.1:{peer_port}"
        proc = _spawn(
            "etcd",
            [
                str(bins.etcd),
                "--name",
                self.name,
                "--data-dir",
                str(self.directory / "etcd"),
                "--listen-client-urls",
                self.etcd_endpoint,
                "--advertise-client-urls",
                self.etcd_endpoint,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"{self.name}={peer}",
                # Test data: losing it on a host crash is fine, fsync latency is not.
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
            self.directory / "etcd.log",
        )
        self._processes.append(proc)

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{self.etcd_endpoint}/health", timeout=2) as r:
                    return bool(json.loads(r.read()).get("health") == "true")
            except (OSError, ValueError):
                return False

        self._wait(proc, "etcd to be healthy", healthy, deadline)

    def _start_apiserver(
        self,
        bins: binaries.Binaries,
        port: int,
        loopback_names: Sequence[str],
        deadline: float,
    ) -> None:
        argv = [
            str(bins.kube_apiserver),
            f"--etcd-servers={self.etcd_endpoint}",
            f"--secure-port={port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--tls-cert-file={self.pki.serving_cert}",
            f"--tls-private-key-file={self.pki.serving_key}",
            f"--client-ca-file={self.pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={self.pki.sa_pub}",
            f"--service-account-signing-key-file={self.pki.sa_key}",
            f"--service-cluster-ip-range={self.service_cidr}",
            "--allow-privileged=true",
            # No kubelets or nodes: nothing to maintain the kubernetes Service's endpoints for.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ]
        if loopback_names:
            argv = self._with_private_hosts(argv, loopback_names)
        proc = _spawn("kube-apiserver", argv, self.directory / "kube-apiserver.log")
        self._processes.append(proc)

        def ready() -> bool:
            try:
                self.request("GET", "/readyz")
                return True
            except (ControlPlaneError, OSError):
                return False

        self._wait(proc, "kube-apiserver /readyz", ready, deadline)

    def _with_private_hosts(self, argv: list[str], names: Sequence[str]) -> list[str]:
        if os.geteuid() != 0:
            raise ControlPlaneError("loopback_names needs root (a private mount namespace)")
        hosts = self.directory / "hosts"
        hosts.write_text(
            "127.0.0.1 localhost " + " ".join(names) + "\n::1 localhost ip6-localhost\n"
        )
        # Bind-mount the private hosts file over /etc/hosts in a new mount namespace
        # (private propagation: the host's /etc/hosts is untouched), then exec.
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"',
            str(hosts),
            *argv,
        ]

    def _start_controller_manager(self, bins: binaries.Binaries) -> None:
        proc = _spawn(
            "kube-controller-manager",
            [
                str(bins.kube_controller_manager),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                f"--service-account-private-key-file={self.pki.sa_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                f"--cluster-signing-cert-file={self.pki.ca_cert}",
                f"--cluster-signing-key-file={self.pki.ca_key}",
                # React within a second, not the production defaults meant for big clusters.
                "--concurrent-gc-syncs=5",
            ],
            self.directory / "kube-controller-manager.log",
        )
        self._processes.append(proc)

    def _wait_for_default_service_account(self, deadline: float, controller_manager: bool) -> None:
        """Pods need their namespace's `default` ServiceAccount (ServiceAccount admission)."""
        path = "/api/v1/namespaces/default/serviceaccounts/default"
        if not controller_manager:
            with contextlib.suppress(ControlPlaneError):
                self.request(
                    "POST",
                    "/api/v1/namespaces/default/serviceaccounts",
                    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
                )

        def exists() -> bool:
            try:
                self.request("GET", path)
                return True
            except ControlPlaneError:
                return False

        self._wait(self._processes[-1], "the default ServiceAccount", exists, deadline)

    def _wait(self, proc: _Process, what: str, probe: Callable[[], bool], deadline: float) -> None:
        while time.monotonic() < deadline:
            if probe():
                return
            if not proc.alive():
                raise ControlPlaneError(
                    f"{proc.name} exited ({proc.popen.returncode}) while waiting for {what}; "
                    f"{proc.log}:\n{proc.tail()}"
                )
            time.sleep(0.1)
        raise ControlPlaneError(f"timed out waiting for {what}; {proc.log}:\n{proc.tail()}")

    # -- clients ------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One API call as the admin; returns the decoded JSON (or text) answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            content_type = "application/json"
            if method == "PATCH":
                content_type = (
                    "application/json-patch+json"
                    if isinstance(body, list)
                    else "application/merge-patch+json"
                )
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._ssl_context(), timeout=30) as r:
                raw = r.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            raise ControlPlaneError(f"{method} {path}: {err.code} {detail}") from err
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def _write_admin_kubeconfig(self) -> None:
        user = {
            "client-certificate": str(self.pki.admin_cert),
            "client-key": str(self.pki.admin_key),
        }
        self.kubeconfig.write_text(self._kubeconfig_text("admin", user))

    def _kubeconfig_text(self, user_name: str, user: dict[str, str]) -> str:
        return str(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": self.name,
                            "cluster": {
                                "server": self.server,
                                "certificate-authority": str(self.pki.ca_cert),
                            },
                        }
                    ],
                    "users": [{"name": user_name, "user": user}],
                    "contexts": [
                        {"name": self.name, "context": {"cluster": self.name, "user": user_name}}
                    ],
                    "current-context": self.name,
                }
            )
        )

    def kubeconfig_for_service_account(
        self, namespace: str, name: str, *, expiration_seconds: int = 3600
    ) -> Path:
        """A kubeconfig with a fresh token (TokenRequest) of the ServiceAccount: its rights only."""
        answer = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds},
            },
        )
        path = self.directory / f"sa-{namespace}-{name}.kubeconfig"
        user = f"system:serviceaccount:{namespace}:{name}"
        path.write_text(self._kubeconfig_text(user, {"token": answer["status"]["token"]}))
        path.chmod(0o600)
        return path

    # -- test isolation -----------------------------------------------------

    def _etcd(self, call: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            f"{self.etcd_endpoint}/v3/kv/{call}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def wipe(self, keep_namespaces: Sequence[str] = SYSTEM_NAMESPACES) -> int:
        """Deletes, in etcd, every namespaced object outside keep_namespaces and every
        webhook configuration; keeps namespaces, CRDs, RBAC, the `default`
        ServiceAccounts, `kube-root-ca.crt` and the `kubernetes` Service.

        A reset between tests sharing one control plane: no finalizer or admission
        webhook of a stopped operator can hold it up. The API server's watch cache
        and the controllers see the deletions as usual. Returns how many were deleted.
        """
        start = "/registry/"
        answer = self._etcd(
            "range", {"key": _b64(start), "range_end": _b64("/registry0"), "keys_only": True}
        )
        doomed = [
            key
            for key in (_unb64(kv["key"]) for kv in answer.get("kvs") or [])
            if _wiped(key, keep_namespaces)
        ]
        # Workloads before pods, so no controller recreates a pod of a deleted owner.
        doomed.sort(key=lambda k: ("/pods/" in k, k))
        for key in doomed:
            self._etcd("deleterange", {"key": _b64(key)})
        return len(doomed)

    # -- lifecycle ----------------------------------------------------------

    def stop(self) -> None:
        """Stops every component, newest first; safe to call more than once."""
        while self._processes:
            self._processes.pop().stop()
        atexit.unregister(self.stop)

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode(errors="replace")


def _wiped(key: str, keep_namespaces: Sequence[str]) -> bool:
    """Whether wipe() deletes this etcd key of the API server's storage.

    Keys are /registry/<resource>/<namespace>/<name> for built-in kinds,
    /registry/services/{specs,endpoints}/<namespace>/<name> for Services and
    /registry/<group>/<plural>/<namespace>/<name> for custom resources (a group
    has a dot, a built-in resource never); cluster-scoped keys have no namespace.
    """
    parts = key.removeprefix("/registry/").split("/")
    if parts[0] in _WIPED_CLUSTER_SCOPED:
        return True
    if "." in parts[0] or parts[0] == "services":
        resource, rest = "/".join(parts[:2]), parts[2:]
    else:
        resource, rest = parts[0], parts[1:]
    if len(rest) != 2:
        return False
    namespace, name = rest
    return namespace not in keep_namespaces and (resource, name) not in _KEPT


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--name", default="peertap-test")
    parser.add_argument("--loopback-name", action="append", default=[])
    args = parser.parse_args(argv)
    # Blocked, so sigwait() receives them and the control plane is stopped in order.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    cp = ControlPlane.start(args.workdir, args.name, loopback_names=args.loopback_name)
    print(f"{cp.version} at {cp.server} in {cp.startup_seconds:.1f} s")
    print(f"KUBECONFIG={cp.kubeconfig}", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
