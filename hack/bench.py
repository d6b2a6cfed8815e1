"""PeerTap benchmark (`make bench`, as root): throughput, latency and memory against anchors.

Each scenario is a lab a - r - b in network namespaces on this machine, run one
after the other:

  veth            underlay only: a -> r -> b routed, no overlay
  tinc            tinc 1.0 switch mode, a <-> b directly across routed r
  openvpn         OpenVPN 2.6 TAP with a static key, a <-> b across routed r
  peertap-direct  a and b dial each other across routed r (r runs no peertap)
  peertap-relay   a and b dial only r, a pure relay; r does not route IP
  openvpn-lossy, peertap-direct-lossy
                  the same with 1% of the packets r forwards dropped at random
                  (nftables `numgen random`; this kernel has no netem): TCP only
  python-floor    the floor of any Python data plane: hack/floor_forwarder.py moves
                  frames between a TAP and UDP (one TAP syscall per frame, frames
                  packed into datagrams), no encryption, no switching: not a VPN, a
                  bound on what Python reaches on this machine
  python-floor-relay
                  the same through a bare Python UDP relay on r (a and b send to r)
  python-floor-sealed, python-floor-sealed-relay
                  the same with PeerTap's two AES-256-GCM layers and nothing more
                  (`--sealed`): each frame end to end, each datagram per link, the
                  relay opening and resealing: the floor of a Python data plane that
                  encrypts as PeerTap must
  peertap-paths   a and b both dial two pure relays r1 and r2; a's and b's links to
                  the relay a sends b's traffic through are slowed with `tc tbf`
                  just before a TCP flow; shows which relay carried the flow (bytes
                  each relay sent, on trunk streams and datagram paths together)
  peertap-paths-unscored
                  the same with path scores taken every 10 s, the flow started just
                  after one (so none falls in an 8 s flow): the control

Measured from a to b: iperf3 single TCP flow (-J), ping RTT (median, p99), 64-byte
UDP datagrams delivered per second (iperf3 -u -l 64 -b 0), and the peak RSS (VmHWM)
of each peertap process. The pings run twice: as they come, then with every process of
the lab and ping itself on CPU 0 ("1 CPU ms"). On a virtual machine, waking a halted
virtual CPU is far dearer than on bare metal, and every contender pays it on each hop;
the second figure leaves it out, so it shows what each data plane's own work costs.
Ratios are against OpenVPN TAP; the targets of the data plane are printed last with
pass/fail, each computed from figures of this run.
PeerTap runs over whatever trunk transport its nodes pick.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from peertap.sidecar.lab import Lab, LabError, LabSpec, topology
from peertap.sidecar.lab.spec import BootstrapSpec, LinkSpec, NodeRole, PodSpec

SCENARIOS = (
    "veth",
    "tinc",
    "openvpn",
    "peertap-direct",
    "peertap-relay",
    "python-floor",
    "python-floor-relay",
    "python-floor-sealed",
    "python-floor-sealed-relay",
    "openvpn-lossy",
    "peertap-direct-lossy",
    "peertap-paths-unscored",
    "peertap-paths",
)
UNSCORED_PROBE_INTERVAL_S = 10.0  # the largest allowed: about no path scores in a run
LOSS_PERCENT = 1
SLOW_RATE = "5mbit"  # tc tbf rate of the links to the slowed relay
UDP_SECONDS = 5
RSS_LIMIT_MIB = 128
TOOLS = {
    "iperf3": "iperf3",
    "tincd": "tinc",
    "openvpn": "openvpn",
    "nft": "nftables",
    "tc": "iproute2",
    "taskset": "util-linux",
}
OVERLAY = {"a": "10.250.0.1", "b": "10.250.0.2"}
BASELINE = "openvpn"
MAIN_PID = os.getpid()
IPERF_PORT = 5201
# Both anchors use the same cipher so the comparison is about the data path.
TINC_CIPHER = ("aes-256-cbc", "sha256")
OPENVPN_CIPHER = ("AES-256-CBC", "SHA256")
TINC_IF = "pt-tinc"
OPENVPN_IF = "pt-ovpn"
FLOOR_IF = "pt-floor"
FLOOR_SCRIPT = Path(__file__).with_name("floor_forwarder.py")


class BenchError(Exception):
    """A scenario could not be set up or measured."""


@dataclass
class Result:
    scenario: str
    gbps: float | None = None
    retransmits: int | None = None
    rtt_median_ms: float | None = None
    rtt_p99_ms: float | None = None
    rtt_one_cpu_ms: float | None = None  # median with every process of the lab on CPU 0
    udp64_pps: float | None = None
    peak_rss_kib: dict[str, int] = field(default_factory=dict)
    via: dict[str, int] = field(default_factory=dict)  # relay -> bytes forwarded
    slowed: str | None = None  # the relay whose links were slowed
    error: str | None = None


@dataclass(frozen=True)
class Options:
    duration: int
    pings: int
    interval: float
    work: Path
    tcp_only: bool = False


def routed_spec() -> LabSpec:
    """a - r - b, r routes IP, no peertap anywhere (the anchors' underlay)."""
    spec = topology("relay", relay_node=False)
    pods = [p.model_copy(update={"node": None}) for p in spec.pods]
    return spec.model_copy(update={"pods": pods, "bootstrap": []})


def untraced(spec: LabSpec) -> LabSpec:
    return spec.model_copy(update={"trace": False})


def check(lab: Lab, pod: str, argv: list[str], *, timeout: float) -> str:
    result = lab.exec(pod, argv, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise BenchError(f"{' '.join(argv)} in {pod}: {(result.stderr or result.stdout)[-500:]}")
    return str(result.stdout)


def wait_reachable(lab: Lab, dst_ip: str) -> None:
    # An ARP failure ends `ping -w` early, so retry single pings until the deadline.
    deadline = time.monotonic() + 30
    while True:
        ping = lab.exec("a", ["ping", "-c1", "-W1", dst_ip], capture_output=True, text=True)
        if ping.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{dst_ip} unreachable from a: {ping.stdout[-300:]}")
        time.sleep(0.2)


def wait_interface(lab: Lab, pod: str, ifname: str, proc: subprocess.Popen[Any], log: Path) -> None:
    """Wait until the VPN daemon in `pod` has put its address on `ifname`."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the daemon in {pod} exited: {log.read_text()[-500:]}")
        shown = lab.exec(
            pod, ["ip", "-o", "-4", "addr", "show", "dev", ifname], capture_output=True
        )
        if f" {OVERLAY[pod]}/".encode() in shown.stdout:
            return
        time.sleep(0.1)
    raise BenchError(f"{ifname} in {pod} got no address: {log.read_text()[-500:]}")


def wait_listening(lab: Lab, pod: str, port: int, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server in {pod} exited with {proc.returncode}")
        listening = lab.exec(pod, ["ss", "-Hltn", f"sport = :{port}"], capture_output=True)
        if listening.stdout.strip():
            return
        time.sleep(0.05)
    raise BenchError(f"nothing listens on port {port} in {pod} after 30 s")


def measure(lab: Lab, dst_ip: str, opts: Options, result: Result) -> None:
    wait_reachable(lab, dst_ip)
    if not opts.tcp_only:
        measure_ping(lab, dst_ip, opts, result)
    report = iperf(lab, dst_ip, opts, ["-t", str(opts.duration)])
    end = report["end"]
    result.gbps = end["sum_received"]["bits_per_second"] / 1e9
    result.retransmits = end["sum_sent"].get("retransmits")
    if not opts.tcp_only:
        udp = iperf(lab, dst_ip, opts, ["-u", "-l", "64", "-b", "0", "-t", str(UDP_SECONDS)])
        total = udp["end"]["sum"]
        delivered = total["packets"] - total["lost_packets"]
        result.udp64_pps = delivered / total["seconds"]


def measure_ping(lab: Lab, dst_ip: str, opts: Options, result: Result) -> None:
    rtts = ping(lab, dst_ip, opts)
    result.rtt_median_ms = statistics.median(rtts)
    result.rtt_p99_ms = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
    # The same pings with every process of the lab (and ping) on one CPU: no wake-up of
    # an idle virtual CPU on the way. The difference is what the machine charges for
    # waking the other CPU, paid alike by every contender.
    pids = lab_pids(lab)
    try:
        set_affinity(pids, "0")
        result.rtt_one_cpu_ms = statistics.median(ping(lab, dst_ip, opts, cpu="0"))
    finally:
        set_affinity(pids, f"0-{(os.cpu_count() or 1) - 1}")


def ping(lab: Lab, dst_ip: str, opts: Options, *, cpu: str | None = None) -> list[float]:
    """Round-trip times (ms, sorted) of `opts.pings` pings from a, on `cpu` if given."""
    argv = ["ping", "-n", "-c", str(opts.pings), "-i", str(opts.interval), dst_ip]
    if cpu is not None:
        argv = ["taskset", "-c", cpu, *argv]
    out = check(lab, "a", argv, timeout=opts.pings * opts.interval + 30)
    rtts = sorted(float(x.split("time=")[1].split()[0]) for x in out.splitlines() if "time=" in x)
    if not rtts:
        raise BenchError("ping: no replies")
    return rtts


def lab_pids(lab: Lab) -> list[int]:
    """Every process running in one of the lab's network namespaces."""
    pids: list[int] = []
    for pod in lab.pods:
        out = subprocess.run(
            ["ip", "netns", "pids", lab.netns(pod)], capture_output=True, text=True, check=False
        ).stdout
        pids += [int(p) for p in out.split()]
    return pids


def set_affinity(pids: list[int], cpus: str) -> None:
    for pid in pids:
        # Every thread of the process; one that has exited meanwhile does not matter.
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], capture_output=True)


def iperf(lab: Lab, dst_ip: str, opts: Options, args: list[str]) -> dict[str, Any]:
    """One iperf3 run from a to b (its JSON report)."""
    server_log = opts.work / "iperf3-server.log"
    with server_log.open("w") as log:
        server = lab.spawn(
            "b",
            ["iperf3", "-s", "-1", "-B", dst_ip, "-p", str(IPERF_PORT)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_listening(lab, "b", IPERF_PORT, server)
        attempt = lab.exec(
            "a",
            ["iperf3", "-c", dst_ip, *args, "-J"],
            capture_output=True,
            text=True,
            timeout=opts.duration + 60,
        )
        report: dict[str, Any] = json.loads(attempt.stdout) if attempt.stdout.strip() else {}
        if not report or "error" in report:
            error = report.get("error") if report else attempt.stderr[-300:]
            raise BenchError(f"iperf3: {error}")
        return report
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(timeout=10)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise BenchError(f"no VmHWM for pid {pid}")


def lossy(lab: Lab, pod: str = "r") -> None:
    """Drop LOSS_PERCENT of the packets `pod` forwards, at random, both ways."""
    rules = (
        "table inet ptloss {\n chain forward_drop {\n  type filter hook forward priority 0;\n"
        f"  numgen random mod 100 < {LOSS_PERCENT} drop\n }}\n}}\n"
    )
    result = lab.exec(pod, ["nft", "-f", "-"], input=rules, capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"nft in {pod}: {result.stderr[-300:]}")


def run_veth(opts: Options, result: Result) -> None:
    with Lab.up(routed_spec(), start_nodes=False) as lab:
        measure(lab, lab.underlay_address("b", "r"), opts, result)


def run_peertap(spec: LabSpec, opts: Options, result: Result, *, loss: bool = False) -> None:
    with Lab.up(untraced(spec)) as lab:
        lab.wait_ready(timeout=60)
        if loss:
            lossy(lab)
        measure(lab, lab.overlay_address("b"), opts, result)
        for pod in lab.plan.node_pods():
            pid = lab.node_pid(pod)
            if pid is None:
                raise BenchError(f"peertap node {pod} is not running")
            result.peak_rss_kib[pod] = peak_rss_kib(pid)


def tinc_configs(lab: Lab, work: Path) -> dict[str, Path]:
    dirs = {pod: work / f"tinc-{pod}" for pod in ("a", "b")}
    for pod, conf in dirs.items():
        (conf / "hosts").mkdir(parents=True)
        peer = "b" if pod == "a" else "a"
        lines = [f"Name = {pod}", "Mode = switch", f"Interface = {TINC_IF}", "AddressFamily = ipv4"]
        if pod == "a":
            lines.append(f"ConnectTo = {peer}")
        (conf / "tinc.conf").write_text("\n".join(lines) + "\n")
        up = conf / "tinc-up"
        up.write_text(
            f"#!/bin/sh\nip addr add {OVERLAY[pod]}/24 dev $INTERFACE\nip link set $INTERFACE up\n"
        )
        up.chmod(0o755)
        cipher, digest = TINC_CIPHER
        (conf / "hosts" / pod).write_text(
            f"Address = {lab.underlay_address(pod, 'r')}\nPort = 655\n"
            f"Cipher = {cipher}\nDigest = {digest}\n"
        )
        subprocess.run(
            ["tincd", "--config", str(conf), "-K", "2048"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=True,
        )
    for pod, conf in dirs.items():
        peer = "b" if pod == "a" else "a"
        shutil.copy(conf / "hosts" / pod, dirs[peer] / "hosts" / pod)
    return dirs


def run_tinc(opts: Options, result: Result) -> None:
    with Lab.up(routed_spec(), start_nodes=False) as lab:
        for pod, conf in tinc_configs(lab, opts.work).items():
            pid = str(conf / "pid")
            start_daemon(
                lab,
                opts.work / f"tinc-{pod}.log",
                pod,
                TINC_IF,
                [*("tincd", "-D", "-n", "ptbench"), *("--config", str(conf)), "--pidfile", pid],
            )
        measure(lab, OVERLAY["b"], opts, result)


def two_relays() -> LabSpec:
    """a and b, each linked to and dialing both pure relays r1 and r2."""
    member, relay = NodeRole(role="member"), NodeRole(role="relay")
    return LabSpec(
        pods=[
            PodSpec(name="a", node=member),
            PodSpec(name="r1", node=relay),
            PodSpec(name="r2", node=relay),
            PodSpec(name="b", node=member),
        ],
        links=[LinkSpec(a=m, b=r) for m in ("a", "b") for r in ("r1", "r2")],
        bootstrap=[BootstrapSpec(dialer=m, target=r) for m in ("a", "b") for r in ("r1", "r2")],
        trace=False,
    )


def slow_down(lab: Lab, pod: str, peer: str) -> None:
    """tc tbf at SLOW_RATE on `pod`'s link towards `peer`."""
    route = check(
        lab, pod, ["ip", "-j", "route", "get", lab.underlay_address(peer, pod)], timeout=10
    )
    dev = json.loads(route)[0]["dev"]
    check(
        lab,
        pod,
        [
            *("tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", SLOW_RATE),
            *("burst", "64kb", "latency", "100ms"),
        ],
        timeout=10,
    )


def forwarded(lab: Lab, relay: str) -> int:
    """Bytes the relay has sent on its trunk streams and datagram paths (relays send
    nothing of their own but probes and announcements)."""
    status = lab.status(relay)
    datagrams = sum(int(p.get("bytes_sent", 0)) for p in status["transports"].values())
    return int(status["trunk"]["bytes_sent"]) + datagrams


def wait_scores_taken(lab: Lab, pod: str, *, timeout: float) -> None:
    """Until `pod` reads its path measurements (their sample counts change)."""
    samples = {peer: p["samples"] for peer, p in lab.status(pod)["paths"].items()}
    deadline = time.monotonic() + timeout
    while {peer: p["samples"] for peer, p in lab.status(pod)["paths"].items()} == samples:
        if time.monotonic() > deadline:
            raise BenchError(f"{pod} took no path scores in {timeout:.0f} s")
        time.sleep(0.05)


def run_paths(opts: Options, result: Result, *, scored: bool = True) -> None:
    with Lab.up(two_relays(), start_nodes=False) as lab:
        for pod in lab.plan.node_pods():
            path = lab.config_path(pod)
            config = json.loads(path.read_text())
            if not scored:
                config.setdefault("routing", {})["probe_interval_s"] = UNSCORED_PROBE_INTERVAL_S
            path.write_text(json.dumps(config))
            lab.start_node(pod)
        lab.wait_ready(timeout=60)
        wait_reachable(lab, lab.overlay_address("b"))
        # Both relays known as paths on both members before the flow starts.
        deadline = time.monotonic() + 30
        while any([len(o["paths"]) for o in lab.status(m)["origins"]] != [2] for m in ("a", "b")):
            if time.monotonic() > deadline:
                raise BenchError("the members did not learn both relays as paths")
            time.sleep(0.3)
        if not scored:
            # Start right after a's path scores were taken: the next read is 10 s away,
            # after the flow (one read of a datagram path's latest RTT sample in the
            # middle of the flow would be enough to move it).
            wait_scores_taken(lab, "a", timeout=2 * UNSCORED_PROBE_INTERVAL_S + 5)
        # Slow the relay a uses for b now: unscored, the flow would stay on it.
        ids = {lab.status(r)["peer_id"]: r for r in ("r1", "r2")}
        (origin,) = lab.status("a")["origins"]
        slowed = ids[origin["via"]]
        result.slowed = slowed
        for member in ("a", "b"):
            slow_down(lab, member, slowed)
        before = {r: forwarded(lab, r) for r in ("r1", "r2")}
        report = iperf(lab, lab.overlay_address("b"), opts, ["-t", str(opts.duration)])
        result.gbps = report["end"]["sum_received"]["bits_per_second"] / 1e9
        result.retransmits = report["end"]["sum_sent"].get("retransmits")
        result.via = {r: forwarded(lab, r) - before[r] for r in before}
        for pod in lab.plan.node_pods():
            pid = lab.node_pid(pod)
            if pid is not None:
                result.peak_rss_kib[pod] = peak_rss_kib(pid)


def start_daemon(lab: Lab, log_path: Path, pod: str, ifname: str, argv: list[str]) -> None:
    """Start a VPN daemon in `pod`, its output to `log_path`, and wait for its interface."""
    with log_path.open("w") as log:
        proc = lab.spawn(pod, argv, stdout=log, stderr=subprocess.STDOUT)
    wait_interface(lab, pod, ifname, proc, log_path)


def run_openvpn(opts: Options, result: Result) -> None:
    key = opts.work / "openvpn-static.key"
    subprocess.run(["openvpn", "--genkey", "secret", str(key)], capture_output=True, check=True)
    cipher, auth = OPENVPN_CIPHER
    with Lab.up(routed_spec(), start_nodes=False) as lab:
        for pod, direction in (("a", "0"), ("b", "1")):
            peer = "b" if pod == "a" else "a"
            start_daemon(
                lab,
                opts.work / f"openvpn-{pod}.log",
                pod,
                OPENVPN_IF,
                [
                    *("openvpn", "--dev", OPENVPN_IF, "--dev-type", "tap", "--proto", "udp"),
                    *("--port", "1194", "--secret", str(key), direction),
                    *("--local", lab.underlay_address(pod, "r")),
                    *("--remote", lab.underlay_address(peer, "r")),
                    *("--ifconfig", OVERLAY[pod], "255.255.255.0"),
                    *("--cipher", cipher, "--auth", auth, "--verb", "1"),
                ],
            )
        if opts.tcp_only:
            lossy(lab)
        measure(lab, OVERLAY["b"], opts, result)


def run_floor(opts: Options, result: Result, *, relayed: bool, sealed: bool) -> None:
    with Lab.up(routed_spec(), start_nodes=False) as lab:
        python = (sys.executable, "-P", str(FLOOR_SCRIPT))
        seal = ["--sealed"] if sealed else []
        if relayed:
            a, b = lab.underlay_address("a", "r"), lab.underlay_address("b", "r")
            if sealed:
                seal += [lab.underlay_address("r", "a"), lab.underlay_address("r", "b")]
            lab.spawn("r", [*python, "relay", "0.0.0.0", a, b, *seal], stdout=subprocess.DEVNULL)
            seal = seal[:1]
        for pod in ("a", "b"):
            peer = "b" if pod == "a" else "a"
            remote = lab.underlay_address("r", pod) if relayed else lab.underlay_address(peer, "r")
            start_daemon(
                lab,
                opts.work / f"floor-{pod}.log",
                pod,
                FLOOR_IF,
                [
                    *(*python, "member", FLOOR_IF, f"{OVERLAY[pod]}/24"),
                    *(lab.underlay_address(pod, "r"), remote, *seal),
                ],
            )
        measure(lab, OVERLAY["b"], opts, result)


def run_scenario(name: str, opts: Options) -> Result:
    result = Result(scenario=name)
    started = time.monotonic()
    print(f"-- {name} ...", flush=True)
    try:
        if name == "veth":
            run_veth(opts, result)
        elif name == "tinc":
            run_tinc(opts, result)
        elif name in ("openvpn", "openvpn-lossy"):
            run_openvpn(opts, result)
        elif name in ("peertap-direct", "peertap-direct-lossy"):
            direct = topology("relay", relay_node=False)
            run_peertap(direct, opts, result, loss=name.endswith("-lossy"))
        elif name == "peertap-relay":
            run_peertap(topology("relay"), opts, result)
        elif name.startswith("python-floor"):
            run_floor(opts, result, relayed=name.endswith("-relay"), sealed="-sealed" in name)
        elif name == "peertap-paths":
            run_paths(opts, result)
        elif name == "peertap-paths-unscored":
            run_paths(opts, result, scored=False)
    except (BenchError, LabError, subprocess.SubprocessError, OSError) as err:
        result.error = f"{type(err).__name__}: {err}"
        print(f"   failed: {result.error}", file=sys.stderr)
    print(f"   done in {time.monotonic() - started:.0f} s", flush=True)
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ratio(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}x"


def table(results: list[Result]) -> str:
    base = next((r for r in results if r.scenario == BASELINE and r.error is None), None)
    head = (
        f"{'scenario':<25} {'Gbit/s':>7} {'vs OVPN':>8} {'retr':>7} {'RTT med ms':>11} "
        f"{'RTT p99 ms':>11} {'1 CPU ms':>9} {'64B pps':>9} {'peak RSS MiB':>22}"
    )
    rows = [head, "-" * len(head)]
    for r in results:
        if r.error:
            rows.append(f"{r.scenario:<25} FAILED: {r.error[:90]}")
            continue
        rss = ", ".join(f"{pod} {kib / 1024:.0f}" for pod, kib in r.peak_rss_kib.items()) or "-"
        rows.append(
            f"{r.scenario:<25} {_fmt(r.gbps, '7.3f')} "
            f"{_ratio(r.gbps, base.gbps if base else None):>8} "
            f"{_fmt(r.retransmits, '7d')} {_fmt(r.rtt_median_ms, '11.3f')} "
            f"{_fmt(r.rtt_p99_ms, '11.3f')} {_fmt(r.rtt_one_cpu_ms, '9.3f')} "
            f"{_fmt(r.udp64_pps, '9.0f')} {rss:>22}"
        )
    for r in results:
        if r.via and r.error is None:
            total = sum(r.via.values()) or 1
            shares = ", ".join(f"{k} {v / total:.0%}" for k, v in r.via.items())
            rows.append(
                f"{r.scenario}: bytes forwarded per relay ({r.slowed} slowed to {SLOW_RATE}): "
                f"{shares}"
            )
    return "\n".join(rows)


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    goal: float
    at_most: bool = False

    def line(self) -> str:
        if self.value is None:
            return f"  n/a   {self.name} (not measured)"
        ok = self.value <= self.goal if self.at_most else self.value >= self.goal
        sign = "<=" if self.at_most else ">="
        return f"  {'PASS' if ok else 'FAIL'}  {self.name}: {self.value:.3f} ({sign} {self.goal})"


def targets(results: list[Result]) -> list[Target]:
    """The data plane's targets, each from figures of this one run."""
    by = {r.scenario: r for r in results if r.error is None}

    def get(scenario: str, attr: str) -> float | None:
        r = by.get(scenario)
        value = getattr(r, attr) if r is not None else None
        return float(value) if value is not None else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    def best(attr: str) -> float | None:
        values = [v for v in (get("openvpn", attr), get("tinc", attr)) if v is not None]
        return max(values) if values else None

    def over(scenario: str) -> float | None:
        a, b = get(scenario, "rtt_median_ms"), get("veth", "rtt_median_ms")
        return None if a is None or b is None else a - b

    rss = [kib / 1024 for r in by.values() for kib in r.peak_rss_kib.values()]
    paths = by.get("peertap-paths")
    forwarded_total: int = sum(paths.via.values()) if paths is not None else 0
    fast_share = None
    if paths is not None and forwarded_total:
        fast = "r2" if paths.slowed == "r1" else "r1"
        fast_share = paths.via.get(fast, 0) / forwarded_total
    return [
        Target(
            "direct TCP / best of OpenVPN, tinc",
            ratio(get("peertap-direct", "gbps"), best("gbps")),
            2.5,
        ),
        Target(
            "via relay TCP / direct",
            ratio(get("peertap-relay", "gbps"), get("peertap-direct", "gbps")),
            0.8,
        ),
        Target("direct RTT over underlay, ms", over("peertap-direct"), 0.3, at_most=True),
        Target("via relay RTT over underlay, ms", over("peertap-relay"), 0.5, at_most=True),
        Target(
            "direct 64 B pps / best of OpenVPN, tinc",
            ratio(get("peertap-direct", "udp64_pps"), best("udp64_pps")),
            2.0,
        ),
        Target(
            f"TCP under {LOSS_PERCENT}% loss / OpenVPN",
            ratio(get("peertap-direct-lossy", "gbps"), get("openvpn-lossy", "gbps")),
            1.0,
        ),
        Target("peak RSS of any node, MiB", max(rss) if rss else None, RSS_LIMIT_MIB, at_most=True),
        Target("multi-path: share of the flow on the fast relay", fast_share, 0.8),
    ]


def floor_lines(results: list[Result]) -> list[str]:
    """Where the bare Python forwarders stand against the targets that are about relays,
    latency and small packets: what no Python design can beat here, whatever it does per
    frame (python-floor), and what none that encrypts as PeerTap must can beat
    (python-floor-sealed)."""
    by = {r.scenario: r for r in results if r.error is None}
    veth = by.get("veth")
    anchors = [
        by[s].udp64_pps for s in ("openvpn", "tinc") if s in by and by[s].udp64_pps is not None
    ]
    lines = []
    for name, what in (
        ("python-floor", "no crypto"),
        ("python-floor-sealed", "two AES-GCM layers"),
    ):
        floor = by.get(name)
        if floor is None:
            continue
        lines.append(f"{name} ({what}):")
        lines += _floor_lines(floor, by.get(f"{name}-relay"), veth)
        if floor.udp64_pps is not None and anchors:
            lines.append(
                f"  64 B pps / best of OpenVPN, tinc: {floor.udp64_pps / max(anchors):.2f}x "
                "(target for PeerTap direct: >= 2.0)"
            )
    base = veth.rtt_one_cpu_ms if veth is not None else None
    for name, scenario in (
        ("PeerTap direct", "peertap-direct"),
        ("python-floor", "python-floor"),
        ("python-floor-sealed", "python-floor-sealed"),
    ):
        one_cpu = by[scenario].rtt_one_cpu_ms if scenario in by else None
        if one_cpu is not None and base is not None:
            lines.append(
                f"with every process on one CPU, {name} RTT over underlay, ms: "
                f"{one_cpu - base:.3f} (no idle-CPU wake-ups)"
            )
    return lines


def _floor_lines(floor: Result, relayed: Result | None, veth: Result | None) -> list[str]:
    lines = []
    if relayed is not None and relayed.gbps is not None and floor.gbps:
        lines.append(
            f"  via relay TCP / direct: {relayed.gbps / floor.gbps:.3f} "
            "(target for PeerTap: >= 0.8)"
        )
    if veth is None or veth.rtt_median_ms is None:
        return lines
    if floor.rtt_median_ms is not None:
        lines.append(
            f"  RTT over underlay, ms: {floor.rtt_median_ms - veth.rtt_median_ms:.3f} "
            "(target for PeerTap direct: <= 0.3)"
        )
    if relayed is not None and relayed.rtt_median_ms is not None:
        lines.append(
            f"  via relay RTT over underlay, ms: {relayed.rtt_median_ms - veth.rtt_median_ms:.3f} "
            "(target for PeerTap: <= 0.5)"
        )
    return lines


def missing_tools(scenarios: list[str]) -> list[str]:
    needed = ["iperf3", "taskset"]
    needed += [t for t, s in (("tincd", "tinc"), ("openvpn", "openvpn")) if s in scenarios]
    if any(s.endswith("-lossy") for s in scenarios):
        needed.append("nft")
    if any(s.startswith("peertap-paths") for s in scenarios):
        needed.append("tc")
    return [TOOLS[t] for t in needed if shutil.which(t) is None]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so every lab's `with` block tears it down.
    if os.getpid() != MAIN_PID:
        # A forked helper child (pyroute2, subprocess before exec) must not unwind our stack.
        os._exit(128 + signum)
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument("--duration", type=int, default=8, help="iperf3 seconds")
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between pings")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root (network namespaces, TAP devices)", file=sys.stderr)
        return 2
    scenarios = list(args.only or SCENARIOS)
    missing = missing_tools(scenarios)
    if missing:
        print(
            f"bench: missing tools; install the Debian packages: {' '.join(missing)}",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    results: list[Result] = []
    try:
        with tempfile.TemporaryDirectory(prefix="peertap-bench-") as tmp:
            for name in scenarios:
                work = Path(tmp) / name
                work.mkdir()
                opts = Options(
                    args.duration, args.pings, args.interval, work, name.endswith("-lossy")
                )
                results.append(run_scenario(name, opts))
    except KeyboardInterrupt:
        print("\nbench: interrupted; labs torn down", file=sys.stderr)
        return 130
    print()
    print(table(results))
    print("\ntargets (ratios of this run):")
    for target in targets(results):
        print(target.line())
    floor = floor_lines(results)
    if floor:
        print("\nthe floor of a Python data plane on this machine:")
        print("\n".join(floor))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_report(results, args), indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    return 1 if any(r.error for r in results) else 0


def _report(results: list[Result], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "iperf3_seconds": args.duration,
        "pings": args.pings,
        "ping_interval_s": args.interval,
        "baseline": BASELINE,
        "tinc_cipher": list(TINC_CIPHER),
        "openvpn_cipher": list(OPENVPN_CIPHER),
        "loss_percent": LOSS_PERCENT,
        "slow_rate": SLOW_RATE,
        "results": [asdict(r) for r in results],
        "targets": [asdict(t) for t in targets(results)],
    }


if __name__ == "__main__":
    raise SystemExit(main())
