"""One fast-path thread: wait for a file descriptor in `poll`, then do a batch of work
under the loop lock.

`work` runs with the lock held and may return a follow-up to run after the lock is
released (a hand-off to the trio loop that waits for it: waiting with the lock held
would deadlock). A batch that raises is counted and logged, and the thread goes on:
one bad packet must not stop the data path. `stop` wakes the thread through a pipe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from collections.abc import Callable

import trio

log = logging.getLogger("peertap.fastpath")

FollowUp = Callable[[], None]
Work = Callable[[], FollowUp | None]
MAX_LOGGED_ERRORS = 10


class Worker:
    def __init__(
        self,
        name: str,
        fd: int,
        work: Work,
        lock: threading.Lock,
        on_error: Callable[[], None],
    ) -> None:
        self.name = name
        self._fd = fd
        self._work = work
        self._lock = lock
        self._on_error = on_error
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"peertap-{name}", daemon=True)
        self.errors = 0
        self.batches = 0

    def start(self) -> None:
        self._thread.start()
        log.debug("thread peertap-%s started", self.name)

    async def stop(self) -> None:
        """Stop the thread and wait for it (from the trio loop: the wait releases the
        loop lock, so a batch in progress can finish)."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            await trio.to_thread.run_sync(self._thread.join)
        os.close(self._wake_r)
        os.close(self._wake_w)
        log.debug("thread peertap-%s stopped", self.name)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        fd = self._fd
        lock = self._lock
        work = self._work
        while not self._stopping:
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            if self._stopping:
                return
            for got, mask in events:
                if got == fd and mask & (select.POLLERR | select.POLLNVAL | select.POLLHUP):
                    log.info("thread peertap-%s: descriptor closed; stopping", self.name)
                    return
            follow_up = None
            try:
                with lock:
                    self.batches += 1
                    follow_up = work()
                if follow_up is not None:
                    follow_up()
            except trio.RunFinishedError:
                return  # the trio loop ended under us: the node is stopping
            except Exception:
                # Count it and go on: one packet that trips a bug must not stop every
                # other packet of the node.
                self.errors += 1
                with lock:
                    self._on_error()
                if self.errors <= MAX_LOGGED_ERRORS:
                    log.exception("thread peertap-%s: internal error in a batch", self.name)
