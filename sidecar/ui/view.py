"""What the web UI shows, reduced from the node's /status document by an allow-list.

Only the fields named here reach the page: a field added to /status later (a key,
a secret) is never shown until someone adds it here on purpose. Values the node
does not report (a trunk's RTT before its first probe answer, per-trunk transport) are
None, and the page says "not measured" rather than guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import graph

VLAN_FIELDS = (
    "label",
    "vlan_id",
    "interface",
    "mac",
    "address",
    "security",
    "readable_by",
    "epoch",
    "mls_id",
    "tap_mode",
    "wanted_tokens",
    "learned_macs",
    "groups",
    "mls_state",
    "members",
    "committer",
    "joined",
)
TRUNK_COUNTERS = (
    "queued_bytes",
    "records_sent",
    "bytes_sent",
    "records_received",
    "bytes_received",
    "drops",
)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _ints(value: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in _mapping(value).items() if isinstance(v, int | float)}


def transports(listen: Any) -> list[str]:
    """Trunk transports from the node's listen multiaddrs (/tcp, /ws, /quic...)."""
    found: list[str] = []
    for addr in listen if isinstance(listen, list) else []:
        parts = str(addr).split("/")
        if "ws" in parts or "wss" in parts:
            name = "ws"
        elif "quic-v1" in parts or "quic" in parts:
            name = "quic"
        else:
            name = parts[3] if len(parts) > 3 else "?"
        if name not in found:
            found.append(name)
    return found


def _vlan(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {name: raw.get(name) for name in VLAN_FIELDS}


def _trunks(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    per_peer = _mapping(doc.get("trunk_peers"))
    paths = _mapping(doc.get("paths"))
    out = []
    for peer in sorted(str(p) for p in doc.get("peers") or []):
        counters = _mapping(per_peer.get(peer))
        path = _mapping(paths.get(peer))
        rtt = path.get("rtt_ms")
        out.append(
            {
                "peer": peer,
                "transport": None,
                "rtt_ms": rtt if isinstance(rtt, int | float) else None,
                "path_rank": path.get("rank") if isinstance(path.get("rank"), int) else None,
                **{name: counters.get(name) for name in TRUNK_COUNTERS},
            }
        )
    return out


def build(doc: Mapping[str, Any], *, join_leave: bool = False) -> dict[str, Any]:
    """The UI document for one status snapshot; `join_leave`: the page may offer join
    and leave buttons (api.vlan_control, asked from the node's own host)."""
    relay = _mapping(doc.get("relay"))
    counters = _mapping(doc.get("counters"))
    topology = graph.from_status(doc)
    vlans = [_vlan(v) for v in doc.get("vlans") or [] if isinstance(v, Mapping)]
    for v in vlans:
        # Other nodes announcing tokens on this VLAN: its members as this node knows them.
        v["member_nodes"] = [n.id for n in topology.nodes if v["vlan_id"] in n.vlans]
        # A status from before `joined` existed lists joined VLANs only.
        v["joined"] = v["joined"] is not False
        v["controllable"] = join_leave and v["security"] in ("public", "psk")
    return {
        "node": {
            "peer_id": doc.get("peer_id"),
            "version": doc.get("version"),
            "protocol": doc.get("protocol"),
            "admission": _mapping(doc.get("admission")).get("mode"),
            "ready": bool(doc.get("ready")),
            "listen": [str(a) for a in doc.get("listen") or []],
            "transports": transports(doc.get("listen")),
            "relay": {"enabled": bool(relay.get("enabled")), "acl": relay.get("acl")},
        },
        "vlans": vlans,
        "trunks": _trunks(doc),
        "trunk_totals": _ints(doc.get("trunk")),
        "topology": topology.as_dict(),
        "drops": _ints(counters.get("drops")),
        "events": _ints(counters.get("events")),
        "routes": _ints(doc.get("routes")),
        "time": doc.get("time"),
        "controls": {"join_leave": join_leave},
    }
