"""Kubernetes Events about PeerTap resources: what changed, in words `kubectl describe` shows.

The operator posts an Event (core/v1) whenever a condition of a CryptoVLAN or MVLAN
changes status or reason, when pods join or leave a VLAN, and when it keeps a VLAN
running without its authority key. `changes` is pure (old status -> new status -> Events);
`post` writes them. Events are best effort: a failure to post is logged, never retried,
and never fails a reconcile.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from . import conditions, kube, models

log = logging.getLogger(__name__)

COMPONENT = "peertap-operator"
MAX_MESSAGE = 1024
MAX_NAMED_PODS = 10


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def condition_changes(
    before: Sequence[models.Condition], after: Sequence[models.Condition]
) -> list[Event]:
    """One Event per condition whose status or reason changed (new conditions included);
    Warning when a condition turns False."""
    old = {c.type: c for c in before}
    out = []
    for cond in after:
        prev = old.get(cond.type)
        if prev is not None and (prev.status, prev.reason) == (cond.status, cond.reason):
            continue
        kind: Literal["Normal", "Warning"] = "Warning" if cond.status == "False" else "Normal"
        out.append(
            Event(kind, cond.reason or cond.type, f"{cond.type}={cond.status}: {cond.message}")
        )
    return out


def _pods(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED_PODS])
    more = len(names) - MAX_NAMED_PODS
    return shown + (f" and {more} more" if more > 0 else "")


def member_changes(before: Sequence[models.Member], after: Sequence[models.Member]) -> list[Event]:
    """Events naming the pods that joined or left the VLAN."""
    old = {m.pod for m in before}
    new = {m.pod for m in after}
    out = []
    if joined := sorted(new - old):
        out.append(Event("Normal", "MembersJoined", f"joined: {_pods(joined)}"))
    if left := sorted(old - new):
        out.append(Event("Normal", "MembersLeft", f"left: {_pods(left)}"))
    return out


def body(obj: Mapping[str, Any], event: Event, *, now: dt.datetime) -> dict[str, Any]:
    """A core/v1 Event about `obj` (an object as read from the API)."""
    meta = obj.get("metadata") or {}
    ns = str(meta.get("namespace") or "default")
    stamp = conditions.rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta.get('name', 'object')}.{secrets.token_hex(8)}",
            "namespace": ns,
        },
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", models.API_VERSION),
            "kind": obj.get("kind", ""),
            "name": meta.get("name", ""),
            "namespace": ns,
            "uid": meta.get("uid", ""),
        },
        "type": event.type,
        "reason": event.reason[:128],
        "message": event.message[:MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def post(
    api: kube.KubeApi, obj: Mapping[str, Any], events: Sequence[Event], *, now: dt.datetime
) -> None:
    ns = str((obj.get("metadata") or {}).get("namespace") or "default")
    for event in events:
        try:
            await api.create(kube.EVENTS.path(ns), body(obj, event, now=now))
        except kube.KubeError as err:
            log.warning("could not post Event %s about %s: %s", event.reason, obj.get("kind"), err)
