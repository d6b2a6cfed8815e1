"""Software segmentation on real interfaces: the kernel's verdict on our segments.

A TAP without offloads gets GSO super-frames cut into MTU-sized frames by the node
(tap/segment.py). Here the Linux stack receiving them is the judge: it counts TCP
segments with a bad checksum, delivers UDP datagrams to a socket only when their
checksum holds, and a real TCP flow (IPv4 and IPv6) crosses the overlay into a
member whose TAP has no offloads.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from gso_units import gso_unit
from pyroute2 import netns
from test_overlay import tcp_bytes, wait_ping

from peertap.sidecar.lab import Lab, topology
from peertap.sidecar.tap.device import TapDevice, TapSettings
from peertap.sidecar.tap.segment import plain_frames

pytestmark = [pytest.mark.netns]

TAP_MAC = bytes.fromhex("020000000001")


@dataclass
class PlainTap:
    tap: TapDevice
    netns: str

    def snmp(self, proto: str) -> dict[str, int]:
        """The namespace's /proc/net/snmp counters of `proto` (Tcp, Udp)."""
        text = subprocess.run(
            ["ip", "netns", "exec", self.netns, "cat", "/proc/net/snmp"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = [line.split() for line in text.splitlines() if line.startswith(f"{proto}:")]
        return {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:], strict=True)}


def tap_in_namespace(*, offload: bool) -> Iterator[PlainTap]:
    """A TAP (`offload` as given) at 10.9.0.1/24 and fd09::1/64, in a namespace of its own."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = f"ptseg{secrets.token_hex(3)}"
    netns.create(name)
    netns.pushns(name)
    tap: TapDevice | None = None
    try:
        tap = TapDevice(
            TapSettings(
                name="pt-seg", mtu=1500, mac=TAP_MAC, address="10.9.0.1/24", offload=offload
            )
        )
        subprocess.run(
            ["ip", "-6", "addr", "add", "fd09::1/64", "dev", "pt-seg", "nodad"], check=True
        )
        # The stack takes frames for an address only once it is installed and the link is
        # up; on a loaded machine that can trail the commands above.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            shown = subprocess.run(
                ["ip", "-o", "addr", "show", "dev", "pt-seg", "up"], capture_output=True, text=True
            ).stdout
            ours = [line for line in shown.splitlines() if "fd09::1/64" in line]
            if "10.9.0.1/24" in shown and ours and "tentative" not in ours[0]:
                break
            time.sleep(0.05)
        yield PlainTap(tap, name)
    finally:
        if tap is not None:
            tap.close()
        netns.popns()
        netns.remove(name)


@pytest.fixture
def plain_tap() -> Iterator[PlainTap]:
    """A TAP without offloads."""
    yield from tap_in_namespace(offload=False)


@pytest.fixture
def offloaded_tap() -> Iterator[PlainTap]:
    """A TAP with offloads."""
    yield from tap_in_namespace(offload=True)


@pytest.mark.parametrize("uso", [True, False], ids=["kernel-uso", "older-kernel"])
def test_a_udp_super_frame_reaches_a_socket_through_an_offloaded_tap(
    offloaded_tap: PlainTap, uso: bool
) -> None:
    """What sender-side coalescing produces: the kernel cuts it (USO), or, on a kernel
    without USO (emulated by turning the device's flag off), the node does first."""
    tap = offloaded_tap.tap
    assert tap.vnet
    if uso and not tap.uso:
        pytest.skip("this kernel has no UDP segmentation offload on TAPs")
    tap.uso = uso  # an older kernel's TAP: the write path must segment
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("10.9.0.1", 5201))
        sock.settimeout(2)
        payload = os.urandom(9 * 100 + 37)
        assert tap.write(gso_unit(payload, version=4, udp=True, mss=100))
        got = [sock.recv(2048) for _ in range(10)]
    assert got == [payload[i : i + 100] for i in range(0, len(payload), 100)]
    assert (tap.counts()["segmented_units"] == 1) == (not uso)


def settled(read: Callable[[], dict[str, int]], key: str, want: int) -> dict[str, int]:
    """The counters once `key` reached `want` (the stack takes frames in a softirq)."""
    deadline = time.monotonic() + 5
    counters = read()
    while counters[key] < want and time.monotonic() < deadline:
        time.sleep(0.01)
        counters = read()
    return counters


@pytest.mark.parametrize("version", [4, 6])
def test_the_kernel_accepts_every_tcp_segment_of_a_super_frame(
    plain_tap: PlainTap, version: int
) -> None:
    payload = os.urandom(20000)
    unit = gso_unit(payload, version=version, mss=1448)
    before_tcp = plain_tap.snmp("Tcp")
    assert plain_tap.tap.write(unit)
    after_tcp = settled(lambda: plain_tap.snmp("Tcp"), "InSegs", before_tcp["InSegs"] + 14)
    # The Tcp counters cover IPv4 and IPv6 alike: 14 segments arrived, none with a bad checksum.
    assert after_tcp["InSegs"] - before_tcp["InSegs"] == 14
    assert after_tcp["InCsumErrors"] == before_tcp["InCsumErrors"]
    assert plain_tap.tap.counts()["segments"] == 14
    # The control: one segment with a flipped payload bit is counted as a checksum error.
    frame = bytearray(plain_frames(unit)[0])
    frame[-1] ^= 1
    os.write(plain_tap.tap.fd, bytes(frame))
    want = after_tcp["InCsumErrors"] + 1
    assert settled(lambda: plain_tap.snmp("Tcp"), "InCsumErrors", want)["InCsumErrors"] == want


@pytest.mark.parametrize("version", [4, 6])
def test_udp_super_frames_arrive_as_datagrams_a_socket_receives(
    plain_tap: PlainTap, version: int
) -> None:
    family, addr = (socket.AF_INET, "10.9.0.1") if version == 4 else (socket.AF_INET6, "fd09::1")
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((addr, 5201))
        sock.settimeout(2)
        payload = os.urandom(5 * 1200 + 17)
        assert plain_tap.tap.write(gso_unit(payload, version=version, udp=True, mss=1200))
        got = [sock.recv(2048) for _ in range(6)]
    assert got == [payload[i : i + 1200] for i in range(0, len(payload), 1200)]


def test_a_malformed_super_frame_is_refused_and_counted(plain_tap: PlainTap) -> None:
    unit = bytearray(gso_unit(os.urandom(3000), version=4))
    unit[1] = 3  # UFO (IP fragmentation), which no Linux TAP of ours produces
    assert not plain_tap.tap.write(bytes(unit))
    assert plain_tap.tap.counts()["refused_gso_type"] == 1


@pytest.mark.slow
def test_a_tcp_flow_reaches_a_member_whose_tap_has_no_offloads(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(topology("pair").model_copy(update={"trace": False}), start_nodes=False)
    cfg_path = lab.config_path("b")
    cfg = json.loads(cfg_path.read_text())
    cfg["vlans"][0]["interface"]["offload"] = False
    cfg_path.write_text(json.dumps(cfg))
    for pod in lab.pods:
        lab.start_node(pod)
    lab.wait_ready(timeout=30)
    assert lab.status("b")["vlans"][0]["tap_mode"].startswith("plain")
    assert lab.status("a")["vlans"][0]["tap_mode"].startswith("vnet-hdr")
    wait_ping(lab, "a", "b")
    for n, pod in enumerate(("a", "b"), start=1):
        lab.exec(pod, ["ip", "-6", "addr", "add", f"fd0a::{n}/64", "dev", "pt-lab", "nodad"])
    # a's TAP hands its node TSO super-frames; b's node must cut them for its plain TAP.
    assert tcp_bytes(lab, "a", "b") > 5_000_000
    server = lab.spawn("b", ["iperf3", "-s", "-1"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        r = lab.exec(
            "a",
            ["iperf3", "-6", "-c", "fd0a::2", "-t", "2", "-J"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["end"]["sum_received"]["bytes"] > 5_000_000
    finally:
        server.wait(timeout=30)
    tap = lab.status("b")["vlans"][0]["tap"]
    assert tap["segmented_units"] > 100
    assert tap["refused_units"] == 0
