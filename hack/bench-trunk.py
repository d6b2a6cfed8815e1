#!/usr/bin/env python3
"""Trunk throughput between two processes on loopback.

The script starts a receiver copy of itself, dials it as a bootstrap peer and
pushes records through one trunk as fast as the trunk's send queue takes them
(`Trunk.send` never waits, so the sender waits for queue room itself). The
receiver times first to last record and reports; this side prints records/s
and Gbit/s of record payload.

    .venv/bin/python hack/bench-trunk.py                    # 1500 B and 64 KiB, Noise, TCP
    .venv/bin/python hack/bench-trunk.py --size 65536 --security tls --transport ws
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import trio

from peertap.sidecar.trunk import MAX_RECORD, Trunk, TrunkSettings
from peertap.sidecar.wire import Intro

LISTEN = {"tcp": "/ip4/127.0.0.1/tcp/0", "ws": "/ip4/127.0.0.1/tcp/0/ws"}
DEFAULT_BYTES = 1 << 30
ROOM_POLL_S = 0.0005
"""How often the sender looks again at a full send queue."""


class _Counter:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.bytes = 0
        self.batches = 0
        self.first = 0.0
        self.last = 0.0
        self.first_cpu = 0.0
        self.cpu = 0.0
        self.done = trio.Event()
        self.up = trio.Event()

    def intro(self) -> bytes:
        return Intro().encode()

    def admit(self, peer: str, intro: bytes) -> bool:
        return True

    async def peer_up(self, peer: str) -> None:
        self.up.set()

    async def peer_down(self, peer: str) -> None:
        pass

    async def records(self, peer: str, records: list[bytes]) -> None:
        now = time.perf_counter()
        if not self.count:
            self.first = now
            self.first_cpu = time.process_time()
        self.count += len(records)
        self.bytes += sum(map(len, records))
        self.batches += 1
        self.last = now
        if self.count >= self.expected:
            self.cpu = time.process_time() - self.first_cpu
            self.done.set()


def _settings(args: argparse.Namespace, bootstrap: list[str]) -> TrunkSettings:
    return TrunkSettings(
        seed=os.urandom(32),
        listen=[LISTEN[args.transport]],
        bootstrap=bootstrap,
        security=args.security,
    )


async def _receiver(args: argparse.Namespace) -> None:
    counter = _Counter(args.count)
    trunk = Trunk(_settings(args, []), counter)
    async with trio.open_nursery() as nursery:
        addrs = await nursery.start(trunk.run)
        print(json.dumps({"addr": addrs[0]}), flush=True)
        await counter.done.wait()
        elapsed = counter.last - counter.first
        stats = trunk.stats()
        print(
            json.dumps(
                {
                    "records": counter.count,
                    "bytes": counter.bytes,
                    "seconds": elapsed,
                    "cpu_seconds": counter.cpu,
                    "deliveries": counter.batches,
                    "reads": stats["reads"],
                }
            ),
            flush=True,
        )
        nursery.cancel_scope.cancel()


async def _sender(
    args: argparse.Namespace, receiver_addr: str, receiver_report: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Push the records, then keep the trunk up until the receiver reports."""
    counter = _Counter(0)
    trunk_settings = _settings(args, [receiver_addr])
    trunk = Trunk(trunk_settings, counter)
    peer = receiver_addr.rsplit("/p2p/", 1)[1]
    payload = os.urandom(args.size)
    batch = [payload] * args.batch
    async with trio.open_nursery() as nursery:
        await nursery.start(trunk.run)
        with trio.fail_after(30):
            while peer not in trunk.peers():
                await trio.sleep(0.01)
        started = time.perf_counter()
        started_cpu = time.process_time()
        bound = trunk_settings.queue_bytes
        full_waits = 0
        for _ in range(args.count // args.batch):
            # `send` drops what a full queue cannot take: wait for room instead.
            while trunk.stats()["queued_bytes"] > bound:
                full_waits += 1
                await trio.sleep(ROOM_POLL_S)
            if not trunk.send(peer, batch):
                raise SystemExit("trunk went down during the run")
        queued = time.perf_counter() - started
        received = json.loads(await trio.to_thread.run_sync(receiver_report))
        cpu = time.process_time() - started_cpu
        stats = trunk.stats()
        nursery.cancel_scope.cancel()
    return {
        "queue_seconds": queued,
        "cpu_seconds": cpu,
        "full_waits": full_waits,
        **stats,
    }, received


def _run_pair(args: argparse.Namespace) -> None:
    child_args = [
        sys.executable,
        __file__,
        "--role=receiver",
        f"--size={args.size}",
        f"--count={args.count}",
        f"--security={args.security}",
        f"--transport={args.transport}",
    ]
    with subprocess.Popen(child_args, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        addr = json.loads(child.stdout.readline())["addr"]

        sent, received = trio.run(_sender, args, addr, child.stdout.readline)
        child.wait(timeout=30)
    seconds = received["seconds"] or float("nan")
    rate = received["records"] / seconds
    gbits = received["bytes"] * 8 / seconds / 1e9
    # On a busy machine wall time mostly measures the neighbours; CPU time of the
    # busier side says what one core per side would carry.
    cpu = max(received["cpu_seconds"], sent["cpu_seconds"]) or float("nan")
    print(
        f"{args.transport}+{args.security} size={args.size:>6} batch={args.batch:>3}: "
        f"{rate:>10.0f} records/s {gbits:6.2f} Gbit/s wall; "
        f"{received['records'] / cpu:>10.0f} records/s "
        f"{received['bytes'] * 8 / cpu / 1e9:6.2f} Gbit/s per CPU-second "
        f"(cpu send/recv {sent['cpu_seconds']:.2f}/{received['cpu_seconds']:.2f} s) "
        f"(sender writes={sent['writes']}, full-queue waits={sent['full_waits']}, "
        f"drops={sent['drops']}, records/write="
        f"{sent['records_sent'] / max(sent['writes'], 1):.1f}; receiver reads="
        f"{received['reads']}, records/delivery="
        f"{received['records'] / max(received['deliveries'], 1):.1f})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["pair", "receiver"], default="pair")
    parser.add_argument("--size", type=int, action="append", help="record size (repeatable)")
    parser.add_argument("--count", type=int, default=0, help="records per run")
    parser.add_argument("--bytes", type=int, default=DEFAULT_BYTES, help="payload per run")
    parser.add_argument("--batch", type=int, default=32, help="records per send call")
    parser.add_argument("--security", choices=["noise", "tls"], default="noise")
    parser.add_argument("--transport", choices=["tcp", "ws"], default="tcp")
    args = parser.parse_args()
    sizes = args.size or [1500, 65536]
    for size in sizes:
        if not 0 < size <= MAX_RECORD:
            parser.error(f"--size must be in 1..{MAX_RECORD}")
    if args.role == "receiver":
        args.size = sizes[0]
        trio.run(_receiver, args)
        return
    for size in sizes:
        run = argparse.Namespace(**vars(args))
        run.size = size
        count = args.count or max(args.bytes // size, args.batch)
        run.count = count - count % args.batch
        _run_pair(run)


if __name__ == "__main__":
    main()
