"""Test harness: a real API server, the real kubectl, and the real operator under kopf.

The fixtures keep their historical names: `emulator` is the cluster under test (a
real kube-apiserver with etcd and kube-controller-manager, shared by the session and
wiped between tests, see tests/kube), read through `ClusterView.objects()`.
kopf, kubectl and the operator's own client reach it over HTTPS as its admin;
`service_account_kubeconfig` gives a process exactly a ServiceAccount's rights.

The webhook configurations the harness creates carry no rules, so the API server
calls nothing by itself (tests post AdmissionReviews to the operator, or register
rules with `Kubectl.register_webhooks`). Their clientConfig is a URL on
WEBHOOK_SERVICE's DNS name, which the API server resolves to 127.0.0.1, at the port
the operator's webhook server listens on; the operator publishes its caBundle there.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kopf.testing import KopfRunner
from kube.controlplane import ControlPlane, free_port

from peertap.operator import handlers, options

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "kubectl"
WEBHOOK_SERVICE = "peertap-operator.peertap-system"
WEBHOOK_CONFIG = "peertap-operator"
CERT_SECRET = "peertap-system/peertap-operator-webhook-tls"


@dataclass
class ClusterView:
    """Reads the cluster under test as its admin."""

    control_plane: ControlPlane

    @property
    def url(self) -> str:
        return self.control_plane.server

    def objects(self, resource: str, namespace: str | None = None) -> dict[str, dict[str, Any]]:
        """Live objects of a resource ('v1/secrets', 'peertap.io/v1alpha1/cryptovlans') by name."""
        group_version, _, plural = resource.rpartition("/")
        base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        where = f"/namespaces/{namespace}" if namespace else ""
        listed = self.control_plane.request("GET", f"{base}{where}/{plural}")
        kind = str(listed["kind"]).removesuffix("List")
        out: dict[str, dict[str, Any]] = {}
        for item in listed["items"]:
            # Items of a list carry no kind; the objects a client GETs do.
            item.setdefault("apiVersion", group_version)
            item.setdefault("kind", kind)
            out[item["metadata"]["name"]] = item
        return out


@pytest.fixture
def emulator(control_plane: ControlPlane) -> Iterator[ClusterView]:
    control_plane.wipe()
    try:
        yield ClusterView(control_plane)
    finally:
        control_plane.wipe()


@dataclass
class Kubectl:
    kubeconfig: Path
    cache: Path
    # Where the operator's webhook server listens (operator_factory) and the
    # webhook configurations point.
    webhook_port: int = 0

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), KUBECACHEDIR=str(self.cache))
        done = subprocess.run(
            [str(KUBECTL), *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done.stdout + (done.stderr if not check else "")

    def apply(self, *paths: Path, namespace: str = "default") -> str:
        args = ["apply", "-n", namespace]
        for p in paths:
            args += ["-f", str(p)]
        return self(*args)

    def apply_text(self, text: str, namespace: str = "default") -> str:
        return self("apply", "-n", namespace, "-f", "-", stdin=text)

    def webhook_url(self, path: str) -> str:
        return f"https://{WEBHOOK_SERVICE}.svc:{self.webhook_port}{path}"

    def register_webhooks(
        self, *, pods_policy: str = "Ignore", resources_policy: str = "Fail", ca_pem: bytes = b""
    ) -> None:
        """Webhook configurations with the chart's rules and failure policies: the API
        server itself then calls the operator for pods and PeerTap resources."""
        client: dict[str, Any] = {}
        if ca_pem:
            client["caBundle"] = base64.b64encode(ca_pem).decode()
        common = {"admissionReviewVersions": ["v1"], "sideEffects": "None", "timeoutSeconds": 10}
        pods = {
            **common,
            "failurePolicy": pods_policy,
            "name": "pods.peertap.io",
            "clientConfig": {"url": self.webhook_url("/mutate-pods"), **client},
            "rules": [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE"],
                    "resources": ["pods"],
                }
            ],
        }
        validating = [
            {
                **common,
                "failurePolicy": resources_policy,
                "name": f"{plural}.peertap.io",
                "clientConfig": {"url": self.webhook_url(f"/validate-{plural}"), **client},
                "rules": [
                    {
                        "apiGroups": ["peertap.io"],
                        "apiVersions": ["v1alpha1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [plural],
                    }
                ],
            }
            for plural in ("cryptovlans", "mvlans")
        ]
        for kind, hooks in (
            ("MutatingWebhookConfiguration", [pods]),
            ("ValidatingWebhookConfiguration", validating),
        ):
            self.apply_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "admissionregistration.k8s.io/v1",
                        "kind": kind,
                        "metadata": {"name": WEBHOOK_CONFIG},
                        "webhooks": hooks,
                    }
                )
            )


def use_kubeconfig(monkeypatch: pytest.MonkeyPatch, kubeconfig: Path) -> None:
    """Points kopf, the operator's client and kubectl at this kubeconfig."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # kopf's login reads the client's default path, fixed when `kubernetes` was imported.
    monkeypatch.setattr(
        kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig)
    )


@pytest.fixture
def kubectl(emulator: ClusterView, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Kubectl:
    kubeconfig = emulator.control_plane.kubeconfig
    use_kubeconfig(monkeypatch, kubeconfig)
    k = Kubectl(kubeconfig=kubeconfig, cache=tmp_path / "kubecache", webhook_port=free_port())
    _prepare_once(k, emulator.control_plane)
    admission = "/apis/admissionregistration.k8s.io/v1"
    for plural, kind in (
        ("mutatingwebhookconfigurations", "MutatingWebhookConfiguration"),
        ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration"),
    ):
        config = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": WEBHOOK_CONFIG},
            "webhooks": [
                {
                    "name": "hook.peertap.io",
                    "clientConfig": {"url": k.webhook_url("/mutate-pods")},
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                }
            ],
        }
        emulator.control_plane.request("POST", f"{admission}/{plural}", config)
    return k


# The CRDs applied to each session's control plane, by server: wipe() keeps CRDs and
# namespaces, so they are applied once (again only if the files change).
_prepared: dict[str, str] = {}


def _prepare_once(k: Kubectl, cp: ControlPlane) -> None:
    digest = hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted((ROOT / "crds").glob("*.yaml")))
    ).hexdigest()
    if _prepared.get(cp.server) == digest:
        return
    k.apply(ROOT / "crds")
    _, _, operator_namespace = WEBHOOK_SERVICE.partition(".")
    k.apply_text(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {operator_namespace}\n")
    # New CRDs serve their resources only once Established.
    k("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    _prepared[cp.server] = digest


def wait_for(what: str, probe: Callable[[], Any], *, timeout: float = 30.0) -> Any:
    """Poll until probe() returns something truthy; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@dataclass
class RunningOperator:
    runner: KopfRunner

    @property
    def ports(self) -> dict[str, int]:
        rt = handlers._runtime
        assert rt is not None
        return rt.servers.ports

    @property
    def ca_pem(self) -> bytes:
        rt = handlers._runtime
        assert rt is not None
        return rt.ca_pem


OperatorFactory = Callable[..., contextlib.AbstractContextManager[RunningOperator]]


@pytest.fixture
def operator_factory(kubectl: Kubectl) -> Iterator[OperatorFactory]:
    previous = options.current()
    base = options.Options(
        webhook_listen=f"127.0.0.1:{kubectl.webhook_port}",
        health_listen="127.0.0.1:0",
        metrics_listen="127.0.0.1:0",
        ui_listen="127.0.0.1:0",
        webhook_service=WEBHOOK_SERVICE,
        webhook_cert_secret=CERT_SECRET,
        webhook_config_name=WEBHOOK_CONFIG,
        sidecar_image="registry.example/peertap:test",
    )

    @contextlib.contextmanager
    def start(**overrides: Any) -> Iterator[RunningOperator]:
        options.use(dataclasses.replace(base, **overrides))
        args = [
            "run",
            "--standalone",
            "--all-namespaces",
            "--verbose",
            "-m",
            "peertap.operator.handlers",
        ]
        with KopfRunner(args, timeout=60) as runner:
            wait_for("operator startup", lambda: handlers._runtime is not None)
            yield RunningOperator(runner=runner)
        assert runner.exception is None, runner.exception
        assert runner.exit_code == 0, runner.output

    try:
        yield start
    finally:
        options.use(previous)
