"""A trunk to a node in another process: echo traffic, kill -9, restart, redial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from peertap.sidecar.trunk import MAX_RECORD, Trunk, TrunkSettings
from peertap.sidecar.wire import Intro

HANG_GUARD_S = 60.0
QUEUE_BYTES = 4 * 1024 * 1024
ECHO_PEER = Path(__file__).with_name("trunk_echo_peer.py")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.received: list[bytes] = []
        self.admitted: list[str] = []

    def intro(self) -> bytes:
        return Intro().encode()

    def admit(self, peer: str, intro: bytes) -> bool:
        assert intro == Intro().encode()
        self.admitted.append(peer)
        return True

    async def peer_up(self, peer: str) -> None:
        self.events.append(("up", peer))

    async def peer_down(self, peer: str) -> None:
        self.events.append(("down", peer))

    async def records(self, peer: str, records: list[bytes]) -> None:
        self.received.extend(records)


async def wait_until(predicate: Callable[[], bool]) -> None:
    with trio.fail_after(HANG_GUARD_S):
        while not predicate():
            await trio.sleep(0.01)


async def wait_for_room(trunk: Trunk) -> None:
    """`send` never waits: pace the test's sends so the send queue accepts each batch."""
    await wait_until(lambda: trunk.stats()["queued_bytes"] <= QUEUE_BYTES)


async def start_echo_peer(seed: bytes, listen: str) -> tuple[trio.Process, dict[str, Any]]:
    process = await trio.lowlevel.open_process(
        [sys.executable, str(ECHO_PEER), "--seed-hex", seed.hex(), "--listen", listen],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = b""
    with trio.fail_after(HANG_GUARD_S):
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some(4096)
            assert chunk, "echo peer exited before it listened"
            line += chunk
    return process, json.loads(line)


async def kill(process: trio.Process) -> None:
    process.send_signal(signal.SIGKILL)
    with trio.fail_after(HANG_GUARD_S):
        await process.wait()


def records_of_every_size(count: int, *, start: int) -> list[bytes]:
    sizes = [1, 64, 1500, 9000, 65536, MAX_RECORD]
    return [
        (start + i).to_bytes(4, "big") * (sizes[i % len(sizes)] // 4 or 1) for i in range(count)
    ]


def test_records_echo_through_another_process_and_survive_its_kill_and_restart() -> None:
    async def main() -> None:
        seed = os.urandom(32)
        process, hello = await start_echo_peer(seed, "/ip4/127.0.0.1/tcp/0")
        try:
            peer = hello["peer_id"]
            events = Recorder()
            trunk = Trunk(
                TrunkSettings(
                    seed=os.urandom(32),
                    listen=["/ip4/127.0.0.1/tcp/0"],
                    bootstrap=[hello["addrs"][0]],
                    reconnect_min_s=0.05,
                    reconnect_max_s=0.5,
                    queue_bytes=QUEUE_BYTES,
                ),
                events,
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(trunk.run)
                await wait_until(lambda: trunk.peers() == [peer])

                first = records_of_every_size(600, start=0)
                for i in range(0, len(first), 50):
                    await wait_for_room(trunk)
                    assert trunk.send(peer, first[i : i + 50])
                await wait_until(lambda: len(events.received) >= len(first))
                assert events.received == first

                await kill(process)
                await wait_until(lambda: events.events[-1:] == [("down", peer)])
                listen = hello["addrs"][0].split("/p2p/")[0]
                process, _ = await start_echo_peer(seed, listen)
                await wait_until(lambda: trunk.peers() == [peer])

                second = records_of_every_size(600, start=10_000)
                for i in range(0, len(second), 50):
                    await wait_for_room(trunk)
                    assert trunk.send(peer, second[i : i + 50])
                await wait_until(lambda: len(events.received) >= len(first) + len(second))
                assert events.received == first + second
                assert events.events == [("up", peer), ("down", peer), ("up", peer)]
                assert events.admitted == [peer, peer]
                assert trunk.stats()["reconnects"] == 1
                assert trunk.stats()["protocol_errors"] == 0
                assert trunk.stats()["drops"] == 0
                nursery.cancel_scope.cancel()
        finally:
            if process.returncode is None:
                await kill(process)

    trio.run(main)
