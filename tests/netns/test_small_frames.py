"""Bursts of small frames on real nodes: a burst of one UDP flow crosses as GSO
super-frames that the receiving kernel cuts back into the same datagrams, other small
frames in bundles; every datagram arrives once, intact and in order, through a relay."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from overlay_checks import pings, wait_until

from peertap.sidecar.lab import Lab, topology

pytestmark = [pytest.mark.netns, pytest.mark.slow]

COUNT = 2000
PORTS = (7101, 7102)

# Receives on two ports until it has `count` datagrams in all or `seconds` pass; prints
# each as "<port> <text>".
RECEIVER = r"""
import select, socket, sys, time
count, seconds, ports = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
socks = []
for port in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("", int(port)))
    socks.append(s)
print("ready", flush=True)
got, end = 0, time.time() + seconds
while got < count and time.time() < end:
    for s in select.select(socks, [], [], 0.2)[0]:
        data = s.recv(4096)
        print(s.getsockname()[1], data.decode(), flush=True)
        got += 1
"""

# Sends `count` datagrams to each port in bursts of 40 (20 to each, interleaved in runs
# of 10 of one size, so that coalescing meets mixed bursts), 20 ms apart.
SENDER = r"""
import socket, sys, time
dst, count, ports = sys.argv[1], int(sys.argv[2]), [int(p) for p in sys.argv[3:]]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
i = 0
while i < count:
    for port in ports:
        for k in range(10):
            n = i + k
            if n < count:
                s.sendto(f"{n:06d} {'x' * (n // 10 % 90 + 10)}".encode(), (dst, port))
    i += 10
    if i % 20 == 0:
        time.sleep(0.02)
"""


def text(n: int) -> str:
    """What the sender sends as datagram `n` (runs of 10 of one size)."""
    return f"{n:06d} {'x' * (n // 10 % 90 + 10)}"


def test_bursts_of_small_datagrams_cross_whole_once_and_in_order(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(topology("relay"))
    lab.wait_ready(timeout=30)
    wait_until("ping a -> b", lambda: pings(lab, "a", "b"), 40)
    receiver = lab.spawn(
        "b",
        [sys.executable, "-c", RECEIVER, str(2 * COUNT), "120", *map(str, PORTS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None
    assert receiver.stdout.readline().strip() == "ready"
    lab.exec(
        "a",
        [sys.executable, "-c", SENDER, lab.overlay_address("b"), str(COUNT), *map(str, PORTS)],
        check=True,
        timeout=120,
    )
    out, _ = receiver.communicate(timeout=150)
    by_port: dict[str, list[str]] = {str(p): [] for p in PORTS}
    for line in out.splitlines():
        port, body = line.split(" ", 1)
        by_port[port].append(body)
    for port, texts in by_port.items():
        numbers = [int(t.split()[0]) for t in texts]
        # Whatever arrived is whole and in order, nothing twice; a lost one is counted.
        assert numbers == sorted(set(numbers)), f"port {port}: out of order or repeated"
        assert texts == [text(n) for n in numbers]
        assert len(numbers) >= 0.95 * COUNT, f"port {port}: {len(numbers)} of {COUNT}"
    events = lab.status("a")["counters"]["events"]
    assert events.get("coalesced_datagrams", 0) > 0
    drops = lab.status("b")["counters"]["drops"]
    assert not {k for k in drops if k.startswith(("bundle", "tap_write", "refused", "malformed"))}
