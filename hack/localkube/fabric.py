"""The network the local clusters live in: one namespace, nothing in it reaches outside.

    host (API servers) --veth 100.64.0.1/30 <-> 100.64.0.2/30-- <prefix>-net
                                                 |- bridge kc1, node address 100.65.1.1/24
                                                 |    '- veth -> a pod's netns (100.65.1.x)
                                                 '- bridge kc2, node address 100.65.2.1/24

The `-net` namespace forwards between the bridges and the host link and holds
the Service rules (`services`). It has no default route: a packet for any other
address dies there. The host gets routes to the pod and Service ranges through
the link only (its own forwarding stays as it is), so API servers reach webhooks
and probes reach pods. Pods of one cluster reach another cluster only through
NodePorts on its node address: the rules drop the rest, as between two real
clusters' networks.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute, NetNS
from pyroute2.netlink.exceptions import NetlinkError

from peertap.sidecar.lab import netns

HOST_ADDR = "100.64.0.1"
NET_ADDR = "100.64.0.2"
LINK_PREFIX = 30


def pod_cidr(index: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"100.65.{index}.0/24")


def node_address(index: int) -> str:
    """The cluster's one node's address: its bridge's address in the `-net` namespace."""
    return str(pod_cidr(index)[1])


ETC_NETNS = Path("/etc/netns")


def write_hosts(pod_ns: str, names: Mapping[str, str]) -> None:
    """The pod's /etc/hosts: localhost and `names` (name -> address). Written in place:
    `ip netns exec` bind-mounts this very file, a new one would not be seen."""
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
    lines += [f"{addr} {name}" for name, addr in sorted(names.items())]
    path = ETC_NETNS / pod_ns / "hosts"
    text = "\n".join(lines) + "\n"
    if path.exists() and path.read_text() == text:
        return
    with open(path, "w") as out:
        out.write(text)


class FabricError(Exception):
    """The network could not be built or changed."""


def run(argv: Sequence[str], *, stdin: str | None = None) -> str:
    result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FabricError(f"{' '.join(argv[:6])}: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Segment:
    """One cluster's pod network: a bridge in the `-net` namespace and the addresses on it."""

    index: int
    bridge: str
    next_host: int = 2

    @property
    def cidr(self) -> ipaddress.IPv4Network:
        return pod_cidr(self.index)

    @property
    def gateway(self) -> str:
        return node_address(self.index)

    def allocate(self) -> str:
        if self.next_host >= self.cidr.num_addresses - 1:
            raise FabricError(f"pod network {self.cidr} is full")
        addr = str(self.cidr[self.next_host])
        self.next_host += 1
        return addr


class Fabric:
    """Builds and removes the `-net` namespace, the host link and per-pod namespaces."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.ns = f"{prefix}-net"
        self.host_link = f"{prefix}h"
        self.segments: dict[int, Segment] = {}
        self.host_routes: list[str] = []
        self.pod_namespaces: set[str] = set()

    def up(self) -> None:
        netns.create_netns(self.ns)
        netns.create_veth(self.host_link, f"{self.prefix}n")
        netns.move_link(f"{self.prefix}n", into=self.ns, rename="host")
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=self.host_link)[0]
            ipr.addr("add", index=index, address=HOST_ADDR, prefixlen=LINK_PREFIX)
            ipr.link("set", index=index, state="up")
        with NetNS(self.ns) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            index = ns.link_lookup(ifname="host")[0]
            ns.addr("add", index=index, address=NET_ADDR, prefixlen=LINK_PREFIX)
            ns.link("set", index=index, state="up")
        netns.set_ip_forward(self.ns, True)

    def add_segment(self, index: int, *, service_cidr: str) -> Segment:
        """The pod network of cluster `index`; its pod and Service ranges route from the host."""
        seg = Segment(index=index, bridge=f"kc{index}")
        with NetNS(self.ns) as ns:
            ns.link("add", ifname=seg.bridge, kind="bridge")
            idx = ns.link_lookup(ifname=seg.bridge)[0]
            ns.addr("add", index=idx, address=seg.gateway, prefixlen=seg.cidr.prefixlen)
            ns.link("set", index=idx, state="up")
        for cidr in (str(seg.cidr), service_cidr):
            self._host_route(cidr)
        self.segments[index] = seg
        return seg

    def _host_route(self, cidr: str) -> None:
        if cidr in self.host_routes:
            return
        with IPRoute() as ipr:
            try:
                ipr.route("add", dst=cidr, gateway=NET_ADDR)
            except NetlinkError as err:
                raise FabricError(f"cannot route {cidr} to the cluster network: {err}") from err
        self.host_routes.append(cidr)

    def attach_pod(self, index: int, pod_ns: str, address: str) -> None:
        """A new namespace for a pod, with eth0 on cluster `index`'s bridge at `address`.

        Its /etc/hosts and /etc/resolv.conf (what `ip netns exec` shows the pod's
        processes) name Services (`write_hosts`) and no DNS server: names resolve
        from the file or fail at once, and no query leaves the namespace."""
        seg = self.segments[index]
        netns.create_netns(pod_ns)
        self.pod_namespaces.add(pod_ns)
        etc = ETC_NETNS / pod_ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        write_hosts(pod_ns, {})
        outer = f"{pod_ns[-11:]}v"
        with NetNS(self.ns) as ns:
            ns.link("add", ifname=outer, kind="veth", peer={"ifname": "eth0", "net_ns_fd": pod_ns})
            idx = ns.link_lookup(ifname=outer)[0]
            ns.link("set", index=idx, master=ns.link_lookup(ifname=seg.bridge)[0], state="up")
        with NetNS(pod_ns) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            idx = ns.link_lookup(ifname="eth0")[0]
            ns.addr("add", index=idx, address=address, prefixlen=seg.cidr.prefixlen)
            ns.link("set", index=idx, state="up")
            ns.route("add", dst="default", gateway=seg.gateway)

    def detach_pod(self, pod_ns: str) -> None:
        """Removing the namespace removes its veth pair too."""
        netns.remove_netns(pod_ns)
        shutil.rmtree(ETC_NETNS / pod_ns, ignore_errors=True)
        self.pod_namespaces.discard(pod_ns)

    def apply_rules(self, ruleset: str) -> None:
        """Replace the `-net` namespace's nftables tables with `ruleset` (one transaction)."""
        run(netns.ns_argv(self.ns, ["nft", "-f", "-"]), stdin=ruleset)

    def down(self) -> None:
        for pod_ns in sorted(self.pod_namespaces):
            netns.remove_netns(pod_ns)
            shutil.rmtree(ETC_NETNS / pod_ns, ignore_errors=True)
        self.pod_namespaces.clear()
        with IPRoute() as ipr:
            for cidr in self.host_routes:
                with contextlib.suppress(NetlinkError):
                    ipr.route("del", dst=cidr, gateway=NET_ADDR)
        self.host_routes.clear()
        netns.delete_root_link(self.host_link)
        netns.remove_netns(self.ns)
