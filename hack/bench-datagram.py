"""Datagram path against trunk stream (`make bench-datagram`, as root), side by side.

For each round, for the `pair` (direct) and `relay` labs, runs the lab with the datagram
path and the fast-path thread (`fast`), with the datagram path all in the trio loop
(`trio`, PEERTAP_FASTPATH=0) and without the datagram path (`stream`: every packet on
the trunk stream), alternating so machine noise hits all alike, and measures from a to b:
iperf3 single TCP flow, ping RTT (median, p10, p99), the CPU seconds each node process
spent per GB delivered (steadier than Gbit/s on a shared machine) and peak RSS.
Then, in-process: the cost of sealing and opening one 64 KiB unit at a 1500-byte MTU,
and sealing in one thread against two (does a second thread help?).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from peertap.sidecar import wire
from peertap.sidecar.datagram import codec, keys
from peertap.sidecar.datagram.channel import DatagramChannel
from peertap.sidecar.datagram.session import SendSession
from peertap.sidecar.lab import Lab, topology

MODES = {"fast": (True, True), "trio": (True, False), "stream": (False, False)}
UNIT = bytes([wire.VERSION, wire.TYPE_DATA, 8, 0]) + os.urandom(65000)
A_ID, B_ID = b"\x00\x24" + bytes(36), b"\x00\x24" + b"\x01" * 36


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> int:
    m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) // 1024 if m else -1


def run_lab(topo: str, datagram: bool, seconds: int, pings: int, fast: bool) -> dict[str, Any]:
    # The nodes inherit the environment: PEERTAP_FASTPATH=0 keeps all in the trio loop.
    os.environ["PEERTAP_FASTPATH"] = "1" if fast else "0"
    spec = topology(topo).model_copy(update={"trace": False, "datagram": datagram})
    with tempfile.TemporaryDirectory(prefix="bench-datagram-") as state:
        lab = Lab.up(spec, state_dir=Path(state))
        try:
            lab.wait_ready(timeout=30)
            dst = lab.overlay_address("b")
            deadline = time.monotonic() + 60
            while lab.exec("a", ["ping", "-c1", "-W1", dst], capture_output=True).returncode:
                if time.monotonic() > deadline:
                    raise RuntimeError("a never reached b")
            time.sleep(3)  # datagram paths up (probes), routes settled
            peer = lab.status("b")["peer_id"] if topo == "pair" else lab.status("r")["peer_id"]
            transport = lab.status("a")["transports"].get(peer, {}).get("transport")
            r = lab.exec(
                "a", ["ping", "-c", str(pings), "-i", "0.01", dst], capture_output=True, text=True
            )
            rtts = sorted(float(x) for x in re.findall(r"time=([\d.]+)", r.stdout))
            pods = lab.plan.node_pods()
            pids = {p: lab.node_pid(p) for p in pods}
            live = {p: pid for p, pid in pids.items() if pid}
            before = {p: cpu_s(pid) for p, pid in live.items()}
            server = lab.spawn("b", ["iperf3", "-s", "-1"], stdout=subprocess.DEVNULL)
            time.sleep(0.5)
            out = lab.exec(
                "a",
                ["iperf3", "-c", dst, "-t", str(seconds), "-J"],
                capture_output=True,
                text=True,
                timeout=seconds + 60,
            )
            server.wait(timeout=30)
            received = json.loads(out.stdout)["end"]["sum_received"]
            gb = received["bytes"] / 1e9
            return {
                "transport": transport,
                "gbps": received["bits_per_second"] / 1e9,
                "rtt_median": statistics.median(rtts) if rtts else None,
                "rtt_p10": rtts[len(rtts) // 10] if rtts else None,
                "rtt_p99": rtts[int(len(rtts) * 0.99)] if rtts else None,
                "cpu_s_per_gb": {
                    p: (cpu_s(pid) - before[p]) / gb for p, pid in pids.items() if pid
                },
                "rss_mib": {p: peak_rss_mib(pid) for p, pid in live.items()},
            }
        finally:
            lab.down()


def unit_costs(units: int = 300) -> tuple[float, float]:
    """Microseconds of one core to seal, and to open, one 64 KiB unit at MTU 1500."""
    rx = DatagramChannel(own_id=B_ID, host="127.0.0.1")
    rx.open()
    sent: list[bytes] = []
    rx.link_up("a", A_ID, "127.0.0.1", lambda record: sent.append(record) is None)
    offer = codec.parse_path_record(sent[0])
    assert isinstance(offer, codec.Offer)
    enc, key = keys.seal_session(offer.public_key, sender=A_ID, receiver=B_ID, session=5)
    rx.on_path_record("a", codec.Key(5, enc, offer.public_key).encode())
    tx = SendSession(5, key)
    start = time.process_time()
    sealed = [tx.seal_sends([UNIT], 1472) for _ in range(units)]  # as a node sends
    mid = time.process_time()
    arrived = [
        [d for item in sends for d in ([item] if isinstance(item, bytes) else item.datagrams())]
        for sends in sealed
    ]  # as a receiver gets them, from the send buffers (not timed)
    out: dict[str, list[bytes]] = {}
    now = time.monotonic()
    begin = time.process_time()
    for datagrams in arrived:
        for d in datagrams:
            rx.on_datagram(d, now, out)
    end = time.process_time()
    rx.close()
    assert len(out["a"]) == units
    return 1e6 * (mid - start) / units, 1e6 * (end - begin) / units


def thread_ratio(units: int = 2000) -> float:
    """Units sealed per second by two threads over one thread."""

    def work(n: int, session: int) -> None:
        tx = SendSession(session, os.urandom(32))
        for _ in range(n):
            tx.seal_sends([UNIT], 1472)

    start = time.perf_counter()
    work(units, 1)
    one = time.perf_counter() - start
    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(units // 2, i + 2)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return one / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=6, help="iperf3 seconds")
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=list(MODES),
        default=list(MODES),
        help="datagram path with the fast-path thread (fast), without it, all in the trio "
        "loop (trio), or no datagram path (stream)",
    )
    args = parser.parse_args()
    rows = []
    for n in range(args.rounds):
        for topo in ("pair", "relay"):
            for mode in args.modes:
                datagram, fast = MODES[mode]
                load = Path("/proc/loadavg").read_text().split()[0]
                result = run_lab(topo, datagram, args.duration, args.pings, fast)
                rows.append((n + 1, topo, mode, load, result))
                print(f"round {n + 1} {topo} {mode} load {load}: {result}", flush=True)
    print()
    print(
        f"{'lab':6} {'mode':6} {'transport':9} {'Gbit/s':>7} {'RTT med':>8} {'p10':>6} "
        f"{'p99':>7}  CPU s/GB"
    )
    for _, topo, mode, _, r in rows:
        cpu = " ".join(f"{p} {v:.1f}" for p, v in r["cpu_s_per_gb"].items())
        print(
            f"{topo:6} {mode:6} {r['transport'] or '-':9} {r['gbps']:7.3f} "
            f"{r['rtt_median'] or 0:8.3f} "
            f"{r['rtt_p10'] or 0:6.3f} {r['rtt_p99'] or 0:7.2f}  {cpu}  RSS {r['rss_mib']}"
        )
    seal_us, open_us = unit_costs()
    print(f"\nper 64 KiB unit at MTU 1500: seal {seal_us:.0f} us, open {open_us:.0f} us")
    print(f"sealing, two threads over one: {thread_ratio():.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
