"""Stopping processes by pid: SIGTERM, a grace period, then SIGKILL.

Works for our own children and for processes a crashed `lab up` left behind;
a recorded start time guards against signalling a recycled pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from .journal import proc_start_time

POLL_S = 0.05


def alive(pid: int, start_time: int | None = None) -> bool:
    """True while `pid` runs (zombies count as gone) and, if given, started at `start_time`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    if state in ("Z", "X"):
        return False
    return start_time is None or proc_start_time(pid) == start_time


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_all(procs: Iterable[tuple[int, int | None]], *, grace_s: float) -> None:
    """Stop every (pid, start_time or None): SIGTERM, wait up to `grace_s`, SIGKILL the rest."""
    targets = [(pid, start) for pid, start in procs if alive(pid, start)]
    for pid, _ in targets:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        targets = [(pid, start) for pid, start in targets if alive(pid, start)]
        if not targets:
            return
        time.sleep(POLL_S)
    for pid, start in targets:
        if alive(pid, start):
            _signal(pid, signal.SIGKILL)
    # SIGKILL is not instant either: wait until the kernel has torn them down.
    deadline = time.monotonic() + 5.0
    while any(alive(pid, start) for pid, start in targets) and time.monotonic() < deadline:
        time.sleep(POLL_S)
