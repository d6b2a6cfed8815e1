"""Where another cluster reaches an MVLAN's relays: multiaddrs from their Services and nodes.

Pure functions of the Service objects (after the API server filled in cluster
IPs, node ports and load-balancer ingress), the nodes' addresses and each
relay's peer ID.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import render


def _node_addresses(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    out = []
    for node in nodes:
        addrs = (node.get("status") or {}).get("addresses") or []
        by_type = {a.get("type"): a.get("address") for a in addrs}
        addr = by_type.get("ExternalIP") or by_type.get("InternalIP")
        if addr:
            out.append(str(addr))
    return sorted(set(out))


def _ip_proto(addr: str) -> str:
    return "ip6" if ":" in addr else "ip4"


def _tiered(
    service: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]], peer_id: str
) -> list[tuple[int, str]]:
    """(tier, multiaddr): 0 load balancer, 1 node port, 2 cluster IP, 3 cluster DNS."""
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    port: Mapping[str, Any] = next(iter(spec.get("ports") or []), {})
    suffix = f"/p2p/{peer_id}"
    out: list[tuple[int, str]] = []
    kind = spec.get("type", "ClusterIP")
    if kind == "LoadBalancer":
        for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get(
            "ingress"
        ) or []:
            if ingress.get("ip"):
                ip = ingress["ip"]
                out.append((0, f"/{_ip_proto(ip)}/{ip}/tcp/{render.P2P_PORT}{suffix}"))
            elif ingress.get("hostname"):
                out.append((0, f"/dns/{ingress['hostname']}/tcp/{render.P2P_PORT}{suffix}"))
    if kind in ("NodePort", "LoadBalancer") and port.get("nodePort"):
        for ip in _node_addresses(nodes):
            out.append((1, f"/{_ip_proto(ip)}/{ip}/tcp/{port['nodePort']}{suffix}"))
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and cluster_ip != "None":
        out.append((2, f"/{_ip_proto(cluster_ip)}/{cluster_ip}/tcp/{render.P2P_PORT}{suffix}"))
    dns = f"/dns/{meta.get('name')}.{meta.get('namespace')}.svc/tcp/{render.P2P_PORT}{suffix}"
    out.append((3, dns))
    return out


def relay_addresses(
    *, service: Mapping[str, Any] | None, nodes: Sequence[Mapping[str, Any]], peer_id: str
) -> list[str]:
    """Multiaddrs that reach one relay, most external first, each ending in /p2p/<peer id>."""
    if service is None:
        return []
    return [addr for _, addr in _tiered(service, nodes, peer_id)]


def all_relay_addresses(
    relays: Sequence[tuple[Mapping[str, Any] | None, str]], *, nodes: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Every relay's addresses ((Service, peer id) per relay, in ordinal order), most external
    first across relays, so the first entry of any kind is relay 0's."""
    tiered = [
        (tier, ordinal, addr)
        for ordinal, (service, peer_id) in enumerate(relays)
        if service is not None
        for tier, addr in _tiered(service, nodes, peer_id)
    ]
    return [addr for _, _, addr in sorted(tiered, key=lambda t: (t[0], t[1]))]
