"""psk VLANs in network namespaces: a pre-shared secret rotates on running nodes in three
steps while a pings b, without a restart and without losing the VLAN; the new keys reach
the fast path (frames under each keep flowing through it) and, after its grace, frames
under the retired key are refused and counted."""

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


def fast_batches(lab: Lab, pod: str) -> int:
    """Datagram batches the node's fast-path thread received and opened (outside trio)."""
    fast = lab.status(pod)["fast_path"]
    assert fast["enabled"] and fast["sources"]["udp"]["errors"] == 0, fast
    batches: int = fast["sources"]["udp"]["batches"]
    return batches


def refused_old_key(lab: Lab) -> int:
    """b's frames under the retired key that went nowhere: a no longer announces tokens
    under that epoch's salt (b finds no route), and an opener holding no key for an epoch
    drops its frames (unknown_epoch)."""
    drops = {p: lab.status(p)["counters"]["drops"] for p in ("a", "b")}
    return drops["b"].get("no_route", 0) + sum(d.get("unknown_epoch", 0) for d in drops.values())


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
    batches_before = fast_batches(lab, "b")
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
    # b's fast-path thread opened them, under each key in turn (no restart, no fallback).
    wait_until("b's fast path to count", lambda: fast_batches(lab, "b") >= batches_before + 140)
    # After the rotation only the new secret works: a node left on the old one is cut off
    # once the grace window (epoch_grace_s, 10 s) for frames in flight has passed.
    write(secret_file(lab, "b"), old)
    wait_until("b back on the old secret", lambda: mls_id(lab, "b") == start)
    time.sleep(11.0)
    refused_before = refused_old_key(lab)
    assert lab.exec("a", ["ping", "-c2", "-W1", dst], capture_output=True).returncode != 0
    a_addr = lab.overlay_address("a")
    assert lab.exec("b", ["ping", "-c2", "-W1", a_addr], capture_output=True).returncode != 0
    # Refused with a counted reason, not silently lost.
    wait_until(
        "frames under the retired key refused", lambda: refused_old_key(lab) > refused_before
    )
    assert lab.status("b")["counters"]["drops"].get("psk_reload_failed", 0) == 0
