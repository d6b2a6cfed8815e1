"""Waiting and pinging across a lab's overlay: shared by the netns test modules."""

from __future__ import annotations

import time
from collections.abc import Callable

from peertap.sidecar.lab import Lab


def wait_until(what: str, check: Callable[[], bool], timeout: float = 40.0) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def pings(lab: Lab, src: str, dst: str, *, count: int = 1, extra: tuple[str, ...] = ()) -> bool:
    """Whether `count` pings from pod `src` to pod `dst`'s overlay address all answer."""
    r = lab.exec(
        src,
        ["ping", "-c", str(count), "-W", "1", "-i", "0.2", *extra, lab.overlay_address(dst)],
        capture_output=True,
    )
    return r.returncode == 0
