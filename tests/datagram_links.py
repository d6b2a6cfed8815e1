"""Two datagram channels on loopback linked as two nodes' trunks would link them: shared
by the datagram and fast-path unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from peertap.sidecar.datagram.channel import DatagramChannel

A_ID = b"\x00\x24\x08\x01\x12\x20" + b"a" * 32
B_ID = b"\x00\x24\x08\x01\x12\x20" + b"b" * 32


async def link_and_wait(
    nursery: trio.Nursery,
    a: DatagramChannel,
    b: DatagramChannel,
    deliver_a: Callable[..., Any] | None,
    deliver_b: Callable[..., Any] | None,
    *,
    host: str = "127.0.0.1",
) -> None:
    """Run both channels (a and b, keyed as A_ID and B_ID; a None delivery for a channel
    whose fast-path thread receives), cross their PATH records in memory (standing in for
    the trunk stream) and wait until each has a usable datagram path to the other. `host`
    is the address each trunk reports for the other side."""
    pending: list[tuple[DatagramChannel, str, bytes]] = []

    def to(channel: DatagramChannel, peer: str) -> Callable[[bytes], bool]:
        return lambda record: pending.append((channel, peer, record)) is None

    nursery.start_soon(a.run, deliver_a)
    nursery.start_soon(b.run, deliver_b)
    a.link_up("b", B_ID, host, to(b, "a"))
    b.link_up("a", A_ID, host, to(a, "b"))

    async def stream() -> None:
        while True:
            while pending:
                channel, peer, record = pending.pop(0)
                channel.on_path_record(peer, record)
            await trio.sleep(0.01)

    nursery.start_soon(stream)
    with trio.fail_after(10):
        while not (a.usable("b") and b.usable("a")):
            await trio.sleep(0.05)
