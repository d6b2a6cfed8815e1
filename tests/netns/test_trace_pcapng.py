"""Traces for Wireshark: a relay lab writes pcapng, and tshark with the shipped dissector
(deploy/wireshark/peertap.lua) names the fields of what crossed the relay."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from peertap.sidecar.lab import Lab, topology

pytestmark = [pytest.mark.netns, pytest.mark.slow]

FIELDS = ("frame.interface_name", "frame.comment", "peertap.version", "peertap.type")
FIELDS += ("peertap.vlan_id", "peertap.counter", "peertap.origin", "peertap.count")
DATA_FIELDS = ("VLAN-ID", "MLS-ID", "VFT", "Sender id", "Counter", "Ciphertext", "AES-GCM tag")
ANNOUNCE_FIELDS = ("Origin (node public key)", "Sequence", "Distance", "Tokens", "VFT")


def wait_ping(lab: Lab, src: str, dst: str, timeout: float = 40.0) -> None:
    argv = ["ping", "-c", "1", "-W", "1", lab.overlay_address(dst)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.exec(src, argv, capture_output=True).returncode == 0:
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for ping {src} -> {dst}")


def test_tshark_decodes_the_relays_pcapng_trace_with_the_shipped_dissector(
    lab_factory: Callable[..., Lab], tshark: Callable[..., str]
) -> None:
    lab = lab_factory(topology("relay").model_copy(update={"trace_format": "pcapng"}))
    lab.wait_ready(timeout=30)
    ids = {pod: lab.status(pod)["peer_id"] for pod in ("a", "b")}
    vlan_id = lab.status("a")["vlans"][0]["vlan_id"]
    wait_ping(lab, "a", "b")
    lab.exec("a", ["ping", "-c", "3", "-i", "0.2", lab.overlay_address("b")], check=True)
    lab.stop_node("r")
    trace = lab.trace_path("r")
    assert trace.suffix == ".pcapng"

    rows = [
        dict(zip(FIELDS, line.split("\t"), strict=True))
        for line in tshark(
            "-r", str(trace), "-T", "fields", *[f"-e{f}" for f in FIELDS]
        ).splitlines()
    ]
    assert {r["frame.interface_name"] for r in rows} == {ids["a"], ids["b"]}
    # INTRO keeps its frozen prefix version 2; every other packet is version 4.
    assert {r["peertap.version"] for r in rows if r["peertap.type"] != "4"} == {"4"}
    assert {r["peertap.version"] for r in rows if r["peertap.type"] == "4"} <= {"2"}
    forwarded = [r for r in rows if r["frame.comment"] == "fwd" and r["peertap.type"] == "1"]
    assert forwarded, "no forwarded DATA packet in the relay's trace"
    assert {r["peertap.vlan_id"] for r in forwarded} == {vlan_id}
    assert all(int(r["peertap.counter"]) > 0 for r in forwarded)
    announces = [r for r in rows if r["peertap.type"] == "2"]
    assert any(int(r["peertap.count"]) > 0 for r in announces)

    detail = tshark("-r", str(trace), "-V", "-Y", "peertap.type == 1 || peertap.type == 2")
    for name in DATA_FIELDS + ANNOUNCE_FIELDS:
        assert f"    {name}: " in detail, name
    for problem in ("Malformed", "shorter than its header", "disagrees", "Unknown protocol"):
        assert problem not in detail
