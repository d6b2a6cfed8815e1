"""psk VLANs in network namespaces: a pre-shared secret rotates on running nodes in three
steps while a pings b, without a restart and without losing the VLAN."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from peertap.sidecar.lab import Lab, topology

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def secret_file(lab: Lab, pod: str) -> Path:
    return lab.config_path(pod).with_name("vlan.psk")


def write(path: Path, *secrets: str) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.write_text("\n".join(secrets) + "\n")
    tmp.replace(path)


def mls_id(lab: Lab, pod: str) -> str:
    vlan: dict[str, str] = lab.status(pod)["vlans"][0]
    return vlan["mls_id"]


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_a_secret_rotates_on_running_nodes_without_losing_the_vlan(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(topology("relay").model_copy(update={"security": "psk", "trace": False}))
    lab.wait_ready(timeout=30)
    dst = lab.overlay_address("b")
    wait_until("a ping", lambda: lab.exec("a", ["ping", "-c1", "-W1", dst]).returncode == 0)
    old = secret_file(lab, "a").read_text().strip()
    new = os.urandom(32).hex()
    start = mls_id(lab, "a")
    ping = lab.spawn(
        "a",
        ["ping", "-q", "-c", "150", "-i", "0.1", "-W", "3", dst],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    # 1. Every node accepts the new secret; 2. a sends with it, then b; 3. the old goes.
    for pod in ("a", "b"):
        write(secret_file(lab, pod), old, new)
    time.sleep(2.5)
    write(secret_file(lab, "a"), new, old)
    wait_until("a to send with the new secret", lambda: mls_id(lab, "a") != start)
    time.sleep(2.0)
    write(secret_file(lab, "b"), new, old)
    wait_until("b to send with the new secret", lambda: mls_id(lab, "b") == mls_id(lab, "a"))
    time.sleep(2.0)
    for pod in ("a", "b"):
        write(secret_file(lab, pod), new)
    out, _ = ping.communicate(timeout=60)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    sent, got = int(m.group(1)), int(m.group(2))
    assert got >= sent - 1, out
    # After the rotation only the new secret works: a node left on the old one is cut off
    # once the grace window (epoch_grace_s, 10 s) for frames in flight has passed.
    write(secret_file(lab, "b"), old)
    wait_until("b back on the old secret", lambda: mls_id(lab, "b") == start)
    time.sleep(11.0)
    assert lab.exec("a", ["ping", "-c2", "-W1", dst], capture_output=True).returncode != 0
    assert lab.status("b")["counters"]["drops"].get("psk_reload_failed", 0) == 0
