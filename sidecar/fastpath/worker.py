"""The fast-path thread: wait for its file descriptors in epoll, then do each ready
one's batch of work under the loop lock.

One thread serves every descriptor of the node (the UDP socket, each TAP): two busy
threads of one process would hand the GIL back and forth at every syscall, which costs
more than it overlaps (measured, docs/operations.md). A work function runs with the lock
held and may return a follow-up to run after the lock is released (a hand-off to the
trio loop that waits for it: waiting with the lock held would deadlock). A batch that
raises is counted and logged, and the thread goes on: one bad packet must not stop the
data path. Descriptors are added and removed from the trio loop (epoll allows that while
the thread waits); `stop` wakes the thread through a pipe.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass

import trio

log = logging.getLogger("peertap.fastpath")

FollowUp = Callable[[], None]
Work = Callable[[], FollowUp | None]
MAX_LOGGED_ERRORS = 10
MAX_EVENTS = 16


@dataclass
class Source:
    """One descriptor the thread serves, and what it did for it."""

    name: str
    fd: int
    work: Work
    batches: int = 0
    errors: int = 0


class Worker:
    def __init__(self, lock: threading.Lock, on_error: Callable[[], None]) -> None:
        self._lock = lock
        self._on_error = on_error
        self._stopping = False
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe()
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._sources: dict[int, Source] = {}
        self._thread = threading.Thread(target=self._run, name="peertap-fastpath", daemon=True)

    @property
    def sources(self) -> list[Source]:
        return list(self._sources.values())

    def add(self, name: str, fd: int, work: Work) -> None:
        """Serve `fd` (from the trio loop, or before `start`)."""
        self._sources[fd] = Source(name, fd, work)
        self._epoll.register(fd, select.EPOLLIN)

    def remove(self, fd: int) -> None:
        """Stop serving `fd` (from the trio loop: the thread is then between batches, and
        skips events it already took for it)."""
        if self._sources.pop(fd, None) is not None:
            self._epoll.unregister(fd)

    def start(self) -> None:
        self._thread.start()
        log.debug("thread peertap-fastpath started")

    async def stop(self) -> None:
        """Stop the thread and wait for it (from the trio loop: the wait releases the
        loop lock, so a batch in progress can finish)."""
        self._stopping = True
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            await trio.to_thread.run_sync(self._thread.join)
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        log.debug("thread peertap-fastpath stopped")

    def _run(self) -> None:
        lock = self._lock
        sources = self._sources
        while not self._stopping:
            try:
                events = self._epoll.poll(-1, MAX_EVENTS)
            except InterruptedError:
                continue
            if self._stopping:
                return
            for fd, mask in events:
                follow_up = None
                source = None
                try:
                    with lock:
                        source = sources.get(fd)
                        if source is None:
                            continue  # removed meanwhile, or the wake-up pipe
                        if mask & select.EPOLLHUP:
                            log.info("fast path: %s hung up; no longer served", source.name)
                            self.remove(fd)
                            continue
                        # EPOLLERR is no reason to stop: on the UDP socket it reports an
                        # ICMP error for an earlier send (a peer gone for a while), which
                        # the next receive clears.
                        source.batches += 1
                        follow_up = source.work()
                    if follow_up is not None:
                        follow_up()
                except trio.RunFinishedError:
                    return  # the trio loop ended under us: the node is stopping
                except Exception:
                    # Count it and go on: one packet that trips a bug must not stop every
                    # other packet of the node.
                    with lock:
                        self._on_error()
                        if source is not None:
                            source.errors += 1
                            if source.errors <= MAX_LOGGED_ERRORS:
                                log.exception("fast path: internal error in a batch")
