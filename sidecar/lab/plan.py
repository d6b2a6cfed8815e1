"""Lab plan: the names, underlay addresses, routes and overlay addresses a spec implies.

Pure functions of (spec, prefix): building, inspecting and tearing down a lab
all derive the same names from the recorded spec, so `down` after a crash
knows every name `up` could have created.
"""

from __future__ import annotations

import ipaddress
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import TypeAlias

from .errors import LabSpecError
from .spec import LabSpec, NodeRole

PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,8}-$")
OVERLAY_NET = IPv4Network("10.250.0.0/24")
TAP_NAME = "pt-lab"
API_LISTEN = "127.0.0.1:9464"
TRUNK_PORT = 4001

# The underlay is one family, IPv4 or IPv6, as its spec's underlay_base.
Network: TypeAlias = IPv4Network | IPv6Network
Interface: TypeAlias = IPv4Interface | IPv6Interface
Address: TypeAlias = IPv4Address | IPv6Address


@dataclass(frozen=True)
class LinkPlan:
    index: int
    a: str
    b: str
    subnet: Network
    addr_a: Interface
    addr_b: Interface
    # Names while both ends still sit in the root namespace; unique per lab prefix.
    root_a: str
    root_b: str

    def ifname(self, pod: str) -> str:
        """The interface name inside `pod`'s namespace: to-<peer>."""
        return f"to-{self.peer(pod)}"

    def peer(self, pod: str) -> str:
        return self.b if pod == self.a else self.a

    def address(self, pod: str) -> Interface:
        return self.addr_a if pod == self.a else self.addr_b


@dataclass(frozen=True)
class Route:
    dst: Network
    gateway: Address


@dataclass(frozen=True)
class PodPlan:
    name: str
    netns: str
    ip_forward: bool
    node: NodeRole | None
    overlay_address: str | None
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class Plan:
    spec: LabSpec
    prefix: str
    pods: dict[str, PodPlan]
    links: tuple[LinkPlan, ...]

    def link(self, pod: str, peer: str) -> LinkPlan:
        for link in self.links:
            if {link.a, link.b} == {pod, peer}:
                return link
        raise LabSpecError(f"no link between {pod} and {peer}")

    def links_of(self, pod: str) -> list[LinkPlan]:
        return [link for link in self.links if pod in (link.a, link.b)]

    @property
    def ipv6(self) -> bool:
        """Whether the underlay is IPv6 (only)."""
        return ipaddress.ip_network(self.spec.underlay_base).version == 6

    def underlay_address(self, pod: str, peer: str) -> Address:
        """`pod`'s address on its link to `peer`."""
        return self.link(pod, peer).address(pod).ip

    def bootstrap_address(self, dialer: str, target: str) -> Address:
        """The target's address on the last hop of the shortest path from the dialer."""
        path = _shortest_path(self.spec, dialer, target)
        if path is None:
            raise LabSpecError(f"bootstrap {dialer}->{target}: no underlay path")
        return self.underlay_address(target, path[-2])

    def node_pods(self) -> list[str]:
        return [p.name for p in self.pods.values() if p.node is not None]


def make_plan(spec: LabSpec, prefix: str) -> Plan:
    if not PREFIX.match(prefix):
        raise LabSpecError(
            f"prefix {prefix!r} must be 2-10 chars of a-z, 0-9 and '-', ending in '-'"
        )
    base = ipaddress.ip_network(spec.underlay_base)
    subnets: Iterator[Network] = base.subnets(new_prefix=spec.link_prefixlen)
    links: list[LinkPlan] = []
    for i, link in enumerate(spec.links):
        try:
            subnet = next(subnets)
        except StopIteration as err:
            raise LabSpecError(f"{base} has too few /{spec.link_prefixlen} subnets") from err
        # The first two hosts: .1 and .2 in IPv4, ::1 and ::2 in IPv6 (hosts() skips the
        # subnet-router anycast address ::0).
        hosts: Iterator[Address] = subnet.hosts()
        addr_a = ipaddress.ip_interface(f"{next(hosts)}/{subnet.prefixlen}")
        addr_b = ipaddress.ip_interface(f"{next(hosts)}/{subnet.prefixlen}")
        links.append(
            LinkPlan(
                index=i,
                a=link.a,
                b=link.b,
                subnet=subnet,
                addr_a=addr_a,
                addr_b=addr_b,
                root_a=f"{prefix}{i}a",
                root_b=f"{prefix}{i}b",
            )
        )
    overlay_hosts = iter(OVERLAY_NET.hosts())
    pods: dict[str, PodPlan] = {}
    for pod in spec.pods:
        overlay = None
        if pod.node is not None and pod.node.role == "member":
            overlay = pod.node.address or f"{next(overlay_hosts)}/{OVERLAY_NET.prefixlen}"
        pods[pod.name] = PodPlan(
            name=pod.name,
            netns=f"{prefix}{pod.name}",
            ip_forward=pod.ip_forward,
            node=pod.node,
            overlay_address=overlay,
            routes=tuple(_routes(spec, links, pod.name)),
        )
    return Plan(spec=spec, prefix=prefix, pods=pods, links=tuple(links))


def _neighbours(spec: LabSpec, pod: str) -> list[str]:
    out = []
    for link in spec.links:
        if link.a == pod:
            out.append(link.b)
        elif link.b == pod:
            out.append(link.a)
    return out


def _bfs(spec: LabSpec, start: str) -> dict[str, str | None]:
    """Predecessor of every pod reachable from `start` on a shortest path."""
    prev: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        for nb in _neighbours(spec, here):
            if nb not in prev:
                prev[nb] = here
                queue.append(nb)
    return prev


def _shortest_path(spec: LabSpec, src: str, dst: str) -> list[str] | None:
    prev = _bfs(spec, src)
    if dst not in prev:
        return None
    path = [dst]
    while (step := prev[path[-1]]) is not None:
        path.append(step)
    return path[::-1]


def _routes(spec: LabSpec, links: list[LinkPlan], pod: str) -> list[Route]:
    """A route to every subnet `pod` is not on, via the first hop toward it.

    Routes exist whether or not the pods in between forward IP, so reachability
    across a pod depends only on its `ip_forward`.
    """
    prev = _bfs(spec, pod)

    def path_back(dst: str) -> list[str]:
        steps = [dst]
        while (step := prev[steps[-1]]) is not None and step != pod:
            steps.append(step)
        return steps

    attached = {link.subnet for link in links if pod in (link.a, link.b)}
    routes = []
    for link in links:
        if link.subnet in attached:
            continue
        ways = [path_back(e) for e in (link.a, link.b) if e in prev]
        if not ways:
            continue
        hop = min(ways, key=len)[-1]
        gateway = next(x for x in links if {x.a, x.b} == {pod, hop}).address(hop).ip
        routes.append(Route(dst=link.subnet, gateway=gateway))
    return routes


def overlay_ip(address: str) -> str:
    return str(ipaddress.ip_interface(address).ip)
