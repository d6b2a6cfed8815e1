"""Test harness: the emulated API server, the real kubectl, and the real operator under kopf."""

from __future__ import annotations

import contextlib
import dataclasses
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
from kube_emulator import EmulatorThread

from peertap.operator import handlers, options

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "kubectl"
WEBHOOK_SERVICE = "peertap-operator.peertap-system"
WEBHOOK_CONFIG = "peertap-operator"
CERT_SECRET = "peertap-system/peertap-operator-webhook-tls"


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    emu = EmulatorThread().start()
    try:
        yield emu
    finally:
        emu.stop()


@dataclass
class Kubectl:
    kubeconfig: Path
    cache: Path

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
        args = ["apply", "--validate=false", "-n", namespace]
        for p in paths:
            args += ["-f", str(p)]
        return self(*args)

    def apply_text(self, text: str, namespace: str = "default") -> str:
        return self("apply", "--validate=false", "-n", namespace, "-f", "-", stdin=text)


@pytest.fixture
def kubectl(emulator: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Kubectl:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulator", "cluster": {"server": emulator.url}}],
                "users": [{"name": "tester", "user": {"token": "test-token"}}],
                "contexts": [
                    {
                        "name": "emulator",
                        "context": {"cluster": "emulator", "user": "tester"},
                    }
                ],
                "current-context": "emulator",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # kopf's login reads the client's default path, fixed when `kubernetes` was imported.
    monkeypatch.setattr(
        kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig)
    )
    k = Kubectl(kubeconfig=kubeconfig, cache=tmp_path / "kubecache")
    k.apply(ROOT / "crds")
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        k.apply_text(
            yaml.safe_dump(
                {
                    "apiVersion": "admissionregistration.k8s.io/v1",
                    "kind": kind,
                    "metadata": {"name": WEBHOOK_CONFIG},
                    "webhooks": [
                        {
                            "name": "hook.peertap.io",
                            "clientConfig": {
                                "service": {
                                    "name": "peertap-operator",
                                    "namespace": "peertap-system",
                                    "path": "/mutate-pods",
                                }
                            },
                            "admissionReviewVersions": ["v1"],
                            "sideEffects": "None",
                        }
                    ],
                }
            )
        )
    return k


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
        webhook_listen="127.0.0.1:0",
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
