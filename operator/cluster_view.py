"""What the operator's web page shows: CryptoVLANs, MVLANs, members and recent Events.

Pure reductions of the objects the API server returns, by allow-list: only the
fields named here reach the page (never a Secret, a key or a credential; the
page's module does not even read Secrets). Unknown or missing fields become
empty values, so a half-reconciled resource still renders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PEERTAP_KINDS = ("CryptoVLAN", "MVLAN")
MAX_EVENTS = 50


def _m(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _meta(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = _m(obj.get("metadata"))
    return {"name": str(meta.get("name", "")), "namespace": str(meta.get("namespace", ""))}


def conditions(status: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {
            k: str(_m(c).get(k, ""))
            for k in ("type", "status", "reason", "message", "lastTransitionTime")
        }
        for c in _list(status.get("conditions"))
    ]


def _ready(status: Mapping[str, Any]) -> str:
    found = [c["status"] for c in conditions(status) if c["type"] == "Ready"]
    return found[0] if found else "Unknown"


def member(raw: Any) -> dict[str, Any]:
    m = _m(raw)
    return {
        "pod": str(m.get("pod", "")),
        "node": str(m.get("node", "")),
        "address": str(m.get("address", "")),
        "mac": str(m.get("mac", "")),
        "ready": bool(m.get("ready")),
        "epoch": int(m.get("epoch") or 0),
        "mlsId": str(m.get("mlsId", "")),
    }


def cryptovlan(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec, status = _m(obj.get("spec")), _m(obj.get("status"))
    members = [member(x) for x in _list(status.get("members"))]
    return {
        **_meta(obj),
        "label": str(spec.get("label") or _meta(obj)["name"]),
        "security": str(spec.get("security", "")),
        "mvlan": str(_m(spec.get("mvlanRef")).get("name", "")),
        "vlanId": str(status.get("vlanId", "")),
        "epoch": int(status.get("epoch") or 0),
        "mlsId": str(status.get("mlsId", "")),
        "ready": _ready(status),
        "members": members,
        "readyMembers": sum(1 for x in members if x["ready"]),
        "conditions": conditions(status),
    }


def mvlan(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec, status = _m(obj.get("spec")), _m(obj.get("status"))
    relays = _m(spec.get("relays"))
    return {
        **_meta(obj),
        "relays": int(relays.get("replicas", 1) or 0),
        "serviceType": str(relays.get("serviceType", "")),
        "cryptoVLANs": [str(x) for x in _list(spec.get("cryptoVLANs"))],
        "relayAddresses": [str(x) for x in _list(status.get("relayAddresses"))],
        "peersSeen": int(status.get("peersSeen") or 0),
        "ready": _ready(status),
        "conditions": conditions(status),
    }


def event(obj: Mapping[str, Any]) -> dict[str, Any]:
    about = _m(obj.get("involvedObject")) or _m(obj.get("regarding"))
    meta = _m(obj.get("metadata"))
    when = (
        obj.get("lastTimestamp")
        or obj.get("eventTime")
        or obj.get("firstTimestamp")
        or meta.get("creationTimestamp")
        or ""
    )
    return {
        "namespace": str(meta.get("namespace", "")),
        "kind": str(about.get("kind", "")),
        "name": str(about.get("name", "")),
        "type": str(obj.get("type", "")),
        "reason": str(obj.get("reason", "")),
        "message": str(obj.get("message") or obj.get("note") or ""),
        "count": int(obj.get("count") or 1),
        "time": str(when),
    }


def recent_events(objs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Events about CryptoVLANs and MVLANs, newest first, at most MAX_EVENTS."""
    events = [event(o) for o in objs]
    ours = [e for e in events if e["kind"] in PEERTAP_KINDS]
    return sorted(ours, key=lambda e: e["time"], reverse=True)[:MAX_EVENTS]


def build(
    *,
    cryptovlans: Iterable[Mapping[str, Any]],
    mvlans: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    errors: Iterable[str] = (),
    namespaces: Iterable[str] = (),
) -> dict[str, Any]:
    """The page document."""

    def order(x: dict[str, Any]) -> tuple[str, str]:
        return (x["namespace"], x["name"])

    return {
        "namespaces": list(namespaces),
        "cryptoVLANs": sorted((cryptovlan(o) for o in cryptovlans), key=order),
        "mvlans": sorted((mvlan(o) for o in mvlans), key=order),
        "events": recent_events(events),
        "errors": list(errors),
    }
