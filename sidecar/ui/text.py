"""`peertap status` for people: the /status document as a few aligned, readable sections.

Takes the same allow-listed view the web page shows (`view.build`), so the two
never disagree about what a node reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _v(value: Any) -> str:
    return "-" if value is None else str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[_v(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    for r in cells:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return [line.rstrip() for line in lines]


def render(view: Mapping[str, Any]) -> str:
    node = view["node"]
    relay = node["relay"]
    out = [
        f"node     {_v(node['peer_id'])}",
        f"state    {'ready' if node['ready'] else 'NOT READY'}, version {_v(node['version'])},"
        + (f" relay (ACL {relay['acl']})" if relay["enabled"] else " not a relay"),
        f"listen   {', '.join(node['listen']) or '-'}",
        "",
        f"VLANs ({len(view['vlans'])})",
    ]
    if view["vlans"]:
        out += _table(
            ("label", "interface", "mac", "address", "security", "epoch", "mls-id", "nodes"),
            [
                (
                    v["label"],
                    v["interface"],
                    v["mac"],
                    v["address"],
                    v["security"],
                    v["epoch"],
                    v["mls_id"],
                    1 + len(v["member_nodes"]) if v.get("joined", True) else "left",
                )
                for v in view["vlans"]
            ],
        )
    out += ["", f"trunks ({len(view['trunks'])})"]
    if view["trunks"]:
        out += _table(
            ("peer", "bytes sent", "bytes received", "queued", "drops", "rtt"),
            [
                (
                    t["peer"],
                    t["bytes_sent"],
                    t["bytes_received"],
                    t["queued_bytes"],
                    t["drops"],
                    "not measured" if t["rtt_ms"] is None else f"{t['rtt_ms']} ms",
                )
                for t in view["trunks"]
            ],
        )
    routes = view["routes"]
    out += ["", "routes   " + (", ".join(f"{k} {v}" for k, v in sorted(routes.items())) or "-")]
    drops = sorted(view["drops"].items(), key=lambda kv: (-kv[1], kv[0]))
    out += ["drops    " + (", ".join(f"{k} {v}" for k, v in drops) or "none")]
    return "\n".join(out) + "\n"
