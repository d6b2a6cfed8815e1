"""PeerTap demo (`make demo`, as root): two members of a private VLAN talk through a
pure relay.

Builds the lab's `relay` topology (a - r - b; a and b reach only r, r does not
route IP) with a private VLAN (MLS-keyed; both members hold a credential from the
VLAN's creator), then shows the overlay at work step by step and tears everything
down. Exits non-zero when a step fails. `--ipv6` (`make demo DEMO_ARGS=--ipv6`) builds
the lab on an IPv6-only underlay; the VLAN itself carries the same IPv4 traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from peertap.sidecar.lab import IPV6_UNDERLAY, Lab, LabError, topology

# "peertap!" as the ping payload: easy to look for in captures and traces.
PATTERN_HEX = "7065657274617021"
PATTERN = bytes.fromhex(PATTERN_HEX) * 2
MAIN_PID = os.getpid()


class StepFailed(Exception):
    """A demo step did not show what it should."""


def heading(n: int, text: str) -> None:
    print(f"\n=== {n}. {text} " + "=" * max(0, 70 - len(text)), flush=True)


def run(lab: Lab, pod: str, argv: list[str], *, timeout: float = 60, echo: bool = True) -> str:
    print(f"[{pod}]$ {' '.join(argv)}", flush=True)
    result = lab.exec(pod, argv, capture_output=True, text=True, timeout=timeout)
    out = (result.stdout + result.stderr).rstrip()
    if out and (echo or result.returncode != 0):
        print(out)
    if result.returncode != 0:
        raise StepFailed(f"{argv[0]} in {pod} exited with {result.returncode}")
    return str(result.stdout)


def capture(lab: Lab, pod: str, iface: str, path: Path) -> subprocess.Popen[Any]:
    proc = lab.spawn(
        pod,
        ["tcpdump", "-i", iface, "-U", "-s", "0", "-w", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # tcpdump says "listening on ..." once the capture is open.
    assert proc.stderr is not None
    proc.stderr.readline()
    return proc


def stop_capture(proc: subprocess.Popen[Any]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    if proc.stderr is not None:
        proc.stderr.close()


def trace_packets(path: Path) -> list[bytes]:
    packets = []
    with path.open() as f:
        for line in f:
            packets.append(bytes.fromhex(json.loads(line)["packet"]))
    return packets


def in_one_group(lab: Lab, pods: list[str]) -> bool:
    try:
        views = [lab.status(pod)["vlans"][0] for pod in pods]
    except (LabError, KeyError, IndexError, ValueError):
        return False
    return all(v.get("mls_state") == "member" for v in views) and (
        len({v["mls_id"] for v in views}) == 1
    )


def demo(lab: Lab, work: Path) -> None:
    b_ip = lab.overlay_address("b")

    heading(1, "Lab: a - r - b (r is a pure relay and does not route IP)")
    lab.wait_ready(timeout=60)
    for pod in lab.pods:
        addrs = ", ".join(
            f"{link.address(pod)} to {link.peer(pod)}" for link in lab.plan.links_of(pod)
        )
        print(f"  {pod}: netns {lab.netns(pod)}, underlay {addrs}")
    print(f"  a cannot reach b's underlay address {lab.underlay_address('b', 'r')}:")
    result = lab.exec("a", ["ping", "-c1", "-W1", lab.underlay_address("b", "r")], check=False)
    if result.returncode == 0:
        raise StepFailed("a reached b across r on the underlay; r should not route")

    heading(2, "The VLAN interface pt-lab in a")
    run(lab, "a", ["ip", "addr", "show", "pt-lab"])

    underlay = capture(lab, "r", "any", work / "underlay.pcap")
    inside_b = capture(lab, "b", "pt-lab", work / "b-pt-lab.pcap")

    heading(3, f"a -> b over the overlay: arping and ping {b_ip}")
    print("  waiting for a and b to form the VLAN's MLS group ...", flush=True)
    started = time.monotonic()
    while not in_one_group(lab, ["a", "b"]):
        if time.monotonic() - started > 60:
            raise StepFailed("a and b did not form one MLS group within 60 s")
        time.sleep(0.5)
    print(f"  one group after {time.monotonic() - started:.1f} s")
    # The first frames may wait for trunks and VFT announcements; -w allows for that.
    run(lab, "a", ["ping", "-c1", "-w20", b_ip])
    run(lab, "a", ["arping", "-c3", "-w10", "-I", "pt-lab", b_ip])
    run(lab, "a", ["ping", "-c5", "-i0.2", "-p", PATTERN_HEX, b_ip])

    heading(4, "ARP entry a learned for b")
    neigh = run(lab, "a", ["ip", "neigh", "show", b_ip, "dev", "pt-lab"])
    b_mac = lab.status("b")["vlans"][0]["mac"]
    print(f"  b's pt-lab MAC from its /status: {b_mac}")
    if b_mac not in neigh:
        raise StepFailed(f"a's ARP entry for {b_ip} is not b's MAC {b_mac}")

    heading(5, "The private VLAN's MLS group, as each member reports it")
    views = {pod: lab.status(pod)["vlans"][0] for pod in ("a", "b")}
    for pod, v in views.items():
        print(
            f"  {pod}: security {v['security']}, epoch {v['epoch']}, MLS-ID {v['mls_id']}, "
            f"{v.get('members')} members, committer {v.get('committer')}"
        )
    if len({(v["epoch"], v["mls_id"]) for v in views.values()}) != 1:
        raise StepFailed("a and b do not report the same epoch and MLS-ID")

    heading(6, "iperf3 a -> b across the relay, 5 s")
    server = lab.spawn("b", ["iperf3", "-s", "-1", "-B", b_ip], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = run(lab, "a", ["iperf3", "-c", b_ip, "-t", "5", "-J"], timeout=60, echo=False)
        end = json.loads(out)["end"]
        gbps = end["sum_received"]["bits_per_second"] / 1e9
        print(f"  received: {gbps:.3f} Gbit/s, retransmits {end['sum_sent'].get('retransmits')}")
        print(
            "  (every node writes a packet trace in this demo, which costs speed; see make bench)"
        )
    finally:
        server.wait(timeout=10)

    heading(7, "The relay's /status (it is in no VLAN and holds no key)")
    status = lab.status("r")
    print(f"  peers: {len(status['peers'])}, relay: {status['relay']}")
    print(f"  VFT table sizes: {status['routes']}")
    print(f"  counters: {status['counters']['events']}")
    print(f"  drops: {status['counters']['drops']}")
    if not status["counters"]["events"].get("fwd_packets"):
        raise StepFailed("the relay forwarded no packets")

    heading(8, "What the relay sees: only ciphertext")
    stop_capture(underlay)
    stop_capture(inside_b)
    in_b = (work / "b-pt-lab.pcap").read_bytes().count(PATTERN)
    on_wire = (work / "underlay.pcap").read_bytes().count(PATTERN)
    in_trace = sum(p.count(PATTERN) for p in trace_packets(lab.trace_path("r")))
    print(f"  ping payload {PATTERN.decode()!r} in b's pt-lab capture (plaintext): {in_b} times")
    print(f"  in the underlay capture at r (trunk bytes):          {on_wire} times")
    print(f"  in the relay's trace (packets after trunk decryption): {in_trace} times")
    if in_b == 0:
        raise StepFailed("the ping payload did not reach b's interface")
    if on_wire or in_trace:
        raise StepFailed("the ping payload is visible at the relay")
    print("  none found at the relay: it forwards by token and never holds the frame key")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--ipv6",
        action="store_true",
        help=f"run the lab on an IPv6-only underlay (/64 links cut from {IPV6_UNDERLAY})",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("demo: run as root (network namespaces, TAP devices)", file=sys.stderr)
        return 2
    missing = [t for t in ("iperf3", "tcpdump", "arping", "ping") if shutil.which(t) is None]
    if missing:
        print(f"demo: missing tools: {', '.join(missing)}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    work = Path(tempfile.mkdtemp(prefix="peertap-demo-"))
    failed: str | None = None
    try:
        underlay = IPV6_UNDERLAY if args.ipv6 else None
        spec = topology("relay", underlay=underlay).model_copy(update={"security": "mls"})
        with Lab.up(spec, state_dir=work / "lab") as lab:
            _guarded(lambda: demo(lab, work))
    except (StepFailed, LabError, subprocess.SubprocessError) as err:
        failed = str(err)
    finally:
        if args.keep:
            print(f"\nwork directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failed:
        print(f"\nDEMO FAILED: {failed}", file=sys.stderr)
        return 1
    print("\nDemo complete; lab torn down.")
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so the lab's `with` block tears it down.
    if os.getpid() != MAIN_PID:
        # A forked helper child (pyroute2, subprocess before exec) must not unwind our stack.
        os._exit(128 + signum)
    raise KeyboardInterrupt


def _guarded(step: Callable[[], None]) -> None:
    """Turn Ctrl-C into a clean teardown instead of a traceback mid-way."""
    try:
        step()
    except KeyboardInterrupt as err:
        raise StepFailed("interrupted") from err


if __name__ == "__main__":
    raise SystemExit(main())
