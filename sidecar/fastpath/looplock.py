"""The lock that makes the trio thread and the fast-path threads take turns.

A trio instrument: the trio thread holds the lock from the moment it wakes from its I/O
wait until it goes back to it, so fast-path threads run only while trio is idle, and
trio code never sees node state half-changed by another thread. `install` and
`uninstall` are called from a trio task (the lock is then held by that thread).
"""

from __future__ import annotations

import threading

import trio


class LoopLock(trio.abc.Instrument):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        """From a trio task: hold the lock now, release it at each I/O wait from here on."""
        if self._installed:
            return
        self.lock.acquire()
        trio.lowlevel.add_instrument(self)
        self._installed = True

    def uninstall(self) -> None:
        """From a trio task (it holds the lock): stop taking turns, release the lock."""
        if not self._installed:
            return
        self._installed = False
        trio.lowlevel.remove_instrument(self)
        self.lock.release()

    def before_io_wait(self, timeout: float) -> None:
        self.lock.release()

    def after_io_wait(self, timeout: float) -> None:
        self.lock.acquire()
