"""Joining and leaving VLANs at run time: the web UI's VLAN selection (`api.vlan_control`).

The API runs in its own thread (api.py); the node's state belongs to the trio loop.
`ThreadBridge` is the only way across: the API thread calls it, and it runs the node's
`join_vlan`/`leave_vlan` on the trio loop with `trio.from_thread.run`, using the trio
token the node captured when it started. Nothing here touches node state from the API
thread.

Only public and psk VLANs can be joined and left. An mls VLAN's membership is its MLS
group's (presence, commits, the committer role); leaving it at run time would need its
private-VLAN task stopped and the group told, so it is refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import trio

from . import ids
from .config import VlanConfig

Action = Literal["join", "leave"]
ACTIONS: tuple[Action, ...] = ("join", "leave")


class VlanControlError(Exception):
    """A join or leave that cannot be done; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def configured(vlans: Sequence[VlanConfig], label: str) -> tuple[VlanConfig, bytes]:
    """The configured VLAN named `label` (or by its 32-hex VLAN-ID) and its VLAN-ID."""
    found = [
        (v, vid)
        for v in vlans
        for vid in [ids.vlan_id(bytes.fromhex(v.creator), v.label)]
        if label in (v.label, vid.hex())
    ]
    if not found:
        raise VlanControlError(404, f"no VLAN {label!r} in this node's config")
    if len(found) > 1:
        raise VlanControlError(
            409, f"several configured VLANs are labelled {label!r}: name one by its VLAN-ID"
        )
    v, vid = found[0]
    if v.security == "mls":
        raise VlanControlError(
            422,
            f"vlan {v.label} is private (mls): its membership follows its MLS group and "
            "cannot be joined or left at run time; change the node's config instead",
        )
    return v, vid


def result(v: VlanConfig, vid: bytes, *, joined: bool) -> dict[str, Any]:
    """What a join or leave answers: which VLAN, and its state now (never a key)."""
    return {"label": v.label, "vlan_id": vid.hex(), "joined": joined}


Handler = Callable[[str], Awaitable[dict[str, Any]]]


class ThreadBridge:
    """Called from the API thread; runs join/leave on the node's trio loop."""

    def __init__(self, *, join: Handler, leave: Handler) -> None:
        self._handlers: dict[str, Handler] = {"join": join, "leave": leave}
        self.token: trio.lowlevel.TrioToken | None = None  # set by the node once it runs

    def __call__(self, action: str, label: str) -> dict[str, Any]:
        handler = self._handlers.get(action)
        if handler is None:
            raise VlanControlError(404, f"no action {action!r}")
        token = self.token
        if token is None:
            raise VlanControlError(503, "the node is not running yet")
        try:
            answer: dict[str, Any] = trio.from_thread.run(handler, label, trio_token=token)
        except trio.RunFinishedError as err:
            raise VlanControlError(503, "the node is stopping") from err
        return answer
