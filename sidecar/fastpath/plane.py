"""The fast path of one node: its thread, and sending from it.

- `start` (in the trio loop) installs the loop lock and starts the thread, serving the
  UDP socket: datagrams are received, opened and their DATA records handed to the
  node's synchronous record handler (deliver to a TAP, forward as a relay) without trio.
- `add_tap` has the thread serve a TAP device too; its work function (node.py) reads a
  batch, seals it and sends it over datagram paths (`send_datagrams`), handing what is
  for peers without one to the trio loop.
- `send` is the trunk's send for the forwarder, usable from either thread: on the
  fast-path thread, records for a peer with a datagram path up go out in datagrams at
  once; the rest (the stream fallback, trio-only) is handed to the trio loop.
- `PEERTAP_FASTPATH=0` in the environment turns it off (everything runs in trio, as
  before), for side-by-side measurements.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .. import wire
from ..counters import Counters
from ..datagram import DatagramChannel
from .looplock import LoopLock
from .worker import Work, Worker

log = logging.getLogger("peertap.fastpath")

ENV = "PEERTAP_FASTPATH"

Send = Callable[[str, list[bytes]], bool]
Deliver = Callable[[str, list[bytes]], None]


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


def _all_data(records: list[bytes]) -> bool:
    return all(len(r) > 1 and r[1] == wire.TYPE_DATA for r in records)


class FastPath:
    def __init__(
        self, *, channel: DatagramChannel | None, trunk_send: Send, counters: Counters
    ) -> None:
        self.channel = channel
        self.loop_lock = LoopLock()
        self._trunk_send = trunk_send
        self._counters = counters
        self._token: trio.lowlevel.TrioToken | None = None
        self._trio_thread: int | None = None
        self._worker = Worker(self.loop_lock.lock, lambda: counters.drop("internal_error"))
        if channel is not None:
            channel.threaded_receive = True  # before the trunk starts the channel

    def start(self, deliver: Deliver) -> None:
        """From the trio loop, once the trunk runs: take turns, start the thread."""
        self._token = trio.lowlevel.current_trio_token()
        self._trio_thread = threading.get_ident()
        self.loop_lock.install()
        channel = self.channel
        if channel is not None:

            def receive() -> None:
                for peer, records in channel.receive_batch().items():
                    deliver(peer, records)

            self._worker.add("udp", channel.fileno, receive)
        self._worker.start()
        log.info("fast path: thread started")

    async def stop(self) -> None:
        if self._token is None:
            return
        await self._worker.stop()
        self.loop_lock.uninstall()
        self._token = None

    def add_tap(self, name: str, fd: int, work: Work) -> None:
        """Serve a TAP device's descriptor (from the trio loop)."""
        self._worker.add(f"tap-{name}", fd, work)

    def remove_tap(self, fd: int) -> None:
        """Stop serving it (from the trio loop, before the descriptor is closed)."""
        self._worker.remove(fd)

    def status(self) -> dict[str, Any]:
        """What the thread serves, and the batches it handled (and that raised) for each."""
        return {
            "enabled": True,
            "thread": "peertap-fastpath",
            "sources": {
                s.name: {"batches": s.batches, "errors": s.errors} for s in self._worker.sources
            },
        }

    # ----- sending -----

    def on_loop(self) -> bool:
        return self._trio_thread is None or threading.get_ident() == self._trio_thread

    def send_datagrams(self, peer: str, records: list[bytes]) -> bool:
        """Send DATA `records` to `peer` over its datagram path; False (nothing sent) if
        it has none up now. From the fast-path thread."""
        channel = self.channel
        return channel is not None and channel.send(peer, records)

    def send(self, peer: str, records: list[bytes]) -> bool:
        """Send `records` to `peer` from any thread (the forwarder's send)."""
        if self.on_loop():
            return self._trunk_send(peer, records)
        if _all_data(records) and self.send_datagrams(peer, records):
            return True
        # No datagram path takes them: the stream is trio's, so queue them there. The
        # trunk counts what it then drops.
        self.call_soon(self._trunk_send, peer, records)
        return True

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the trio loop, without waiting (any thread)."""
        token = self._token
        if token is None or self.on_loop():
            fn(*args)
            return
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(fn, *args)

    def run_in_loop(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run `afn(*args)` on the trio loop and wait for it (a fast-path thread, without
        the loop lock)."""
        trio.from_thread.run(afn, *args, trio_token=self._token)
