"""`python -m peertap.operator` with the chart's flags runs the operator until SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

from kube_emulator import EmulatorThread
from operator_harness import CERT_SECRET, ROOT, WEBHOOK_CONFIG, WEBHOOK_SERVICE, Kubectl, wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(json.loads(r.read())["ok"])
    except (urllib.error.URLError, ConnectionError):
        return False


def test_help_lists_every_contract_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "peertap.operator", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in (
        "--namespace",
        "--webhook-listen",
        "--webhook-service",
        "--webhook-cert-secret",
        "--webhook-config-name",
        "--webhook-tls-dir",
        "--no-webhook",
        "--health-listen",
        "--metrics-listen",
        "--sidecar-image",
        "--verbose",
    ):
        assert flag in out


def test_entry_point_reconciles_a_watched_namespace_and_stops_on_sigterm(
    emulator: EmulatorThread, kubectl: Kubectl
) -> None:
    for ns in ("team-a", "team-b"):
        kubectl.apply_text(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
    kubectl.apply(ROOT / "deploy" / "examples" / "cryptovlan.yaml", namespace="team-a")
    kubectl.apply(ROOT / "deploy" / "examples" / "cryptovlan.yaml", namespace="team-b")
    health = _free_port()
    env = dict(os.environ, PEERTAP_METRICS_LISTEN=f"127.0.0.1:{_free_port()}")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "peertap.operator",
            "--namespace=team-a",
            f"--health-listen=127.0.0.1:{health}",
            f"--webhook-listen=127.0.0.1:{_free_port()}",
            f"--webhook-service={WEBHOOK_SERVICE}",
            f"--webhook-cert-secret={CERT_SECRET}",
            f"--webhook-config-name={WEBHOOK_CONFIG}",
            "--sidecar-image=img:1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        try:
            wait_for("health endpoint", lambda: _health(health))
        except AssertionError:
            proc.kill()
            raise AssertionError(proc.communicate()[0]) from None
        try:
            wait_for(
                "authority Secret in team-a",
                lambda: "lab-authority" in emulator.objects("v1/secrets", "team-a"),
            )
        except AssertionError:
            proc.send_signal(signal.SIGTERM)
            raise AssertionError(proc.communicate(timeout=30)[0]) from None
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    # Only the watched namespace was touched.
    assert "lab-authority" not in emulator.objects("v1/secrets", "team-b")
    assert "BEGIN PRIVATE KEY" not in output
