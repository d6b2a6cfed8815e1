"""Services -> nftables rules for the `-net` namespace: what kube-proxy does, in one table.

A pure function of each cluster's Services and EndpointSlices. Per Service port:
ClusterIP:port, and for NodePort/LoadBalancer Services also the node address:
nodePort, are DNATed to a ready endpoint (the first by address: one endpoint per
Service is all PeerTap's relays and webhook have). Traffic that was DNATed is
masqueraded to the address of the interface it leaves by (kube-proxy's
--masquerade-all), so replies come back through the rules even between two pods
on one bridge. The `kubernetes` Service leads to the API server's door on the host.

Between two clusters' bridges only DNATed traffic (a NodePort) and its replies pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TABLE = "localkube"
JsonObj = Mapping[str, Any]


@dataclass(frozen=True)
class ClusterView:
    """What the rules need of one cluster."""

    bridge: str
    node_address: str
    services: Sequence[JsonObj]
    endpoint_slices: Sequence[JsonObj]
    api_door: str  # HOST:PORT on the host that reaches this cluster's API server


@dataclass(frozen=True)
class Rule:
    match: str  # "ip daddr A tcp dport P"
    target: str  # "A:P"
    why: str


def _ready_endpoints(slices: Sequence[JsonObj], namespace: str, service: str) -> list[JsonObj]:
    out = []
    for eps in slices:
        meta = eps.get("metadata") or {}
        labels = meta.get("labels") or {}
        if meta.get("namespace") != namespace:
            continue
        if labels.get("kubernetes.io/service-name") != service:
            continue
        if eps.get("addressType", "IPv4") != "IPv4":
            continue
        out.append(eps)
    return out


def _target(slices: Sequence[JsonObj], port: JsonObj) -> str | None:
    """The first ready endpoint address and the port that implements `port` (by name)."""
    name = port.get("name") or ""
    candidates = []
    for eps in slices:
        numbers = [p.get("port") for p in eps.get("ports") or [] if (p.get("name") or "") == name]
        if not numbers or numbers[0] is None:
            continue
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for addr in endpoint.get("addresses") or []:
                candidates.append(f"{addr}:{numbers[0]}")
    return sorted(candidates)[0] if candidates else None


def cluster_rules(view: ClusterView) -> list[Rule]:
    rules: list[Rule] = []
    for svc in view.services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        cluster_ip = spec.get("clusterIP")
        if not cluster_ip or cluster_ip == "None":
            continue
        slices = _ready_endpoints(view.endpoint_slices, ns, name)
        for port in spec.get("ports") or []:
            if port.get("protocol", "TCP") != "TCP":
                continue
            if (ns, name) == ("default", "kubernetes"):
                target: str | None = view.api_door
            else:
                target = _target(slices, port)
            if target is None:
                continue
            why = f"{ns}/{name}:{port.get('port')}"
            rules.append(Rule(f"ip daddr {cluster_ip} tcp dport {port['port']}", target, why))
            if spec.get("type") in ("NodePort", "LoadBalancer") and port.get("nodePort"):
                rules.append(
                    Rule(
                        f"ip daddr {view.node_address} tcp dport {port['nodePort']}",
                        target,
                        f"{why} (node port)",
                    )
                )
    return rules


def ruleset(clusters: Sequence[ClusterView]) -> str:
    """The whole table, replacing the previous one atomically (`nft -f`)."""
    lines = [
        f"table ip {TABLE}",
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
    ]
    for cluster in clusters:
        for rule in cluster_rules(cluster):
            lines.append(f"    {rule.match} dnat to {rule.target} comment {_quote(rule.why)}")
    lines += [
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        "    ct status dnat masquerade",
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        "    ct state established,related accept",
    ]
    bridges = [c.bridge for c in clusters]
    for a in bridges:
        for b in bridges:
            if a != b:
                lines.append(f'    iifname "{a}" oifname "{b}" ct status dnat accept')
                lines.append(f'    iifname "{a}" oifname "{b}" drop')
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'")[:120] + '"'
