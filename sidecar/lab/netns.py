"""Netlink work for the lab: namespaces, veth pairs, addresses, routes, forwarding.

pyroute2 does the netlink; `ip netns exec` runs commands and reads sysctls inside
a namespace (it also gives each command the namespace's /sys). Removal functions
tolerate what is already gone, so teardown can run any number of times.

pyroute2 forks a short-lived child for namespace work. A SIGINT or SIGTERM
handled by Python in that child (Ctrl-C, or a program's own SIGTERM handler)
would make it run on as a copy of the caller, so both signals stay blocked
around every pyroute2 call: the child inherits the mask and exits normally,
and the caller receives the signal right after the call.
"""

from __future__ import annotations

import errno
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pyroute2 import IPRoute, NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

from .errors import NetnsError
from .plan import Interface, Route

_DEFERRED = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def _signals_deferred() -> Iterator[None]:
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def ns_argv(name: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", name, *argv]


def list_netns() -> set[str]:
    with _signals_deferred():
        return set(netns.listnetns())


def create_netns(name: str) -> None:
    try:
        with _signals_deferred():
            netns.create(name)
    except OSError as err:
        raise NetnsError(f"cannot create network namespace {name}: {err}") from err


def remove_netns(name: str) -> None:
    """Removing a namespace also destroys the veth ends and TAPs inside it."""
    if name not in list_netns():
        return
    try:
        with _signals_deferred():
            netns.remove(name)
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise NetnsError(f"cannot remove network namespace {name}: {err}") from err


def create_veth(name_a: str, name_b: str) -> None:
    with _signals_deferred(), IPRoute() as ipr:
        try:
            ipr.link("add", ifname=name_a, kind="veth", peer={"ifname": name_b})
        except NetlinkError as err:
            raise NetnsError(f"cannot create veth {name_a}/{name_b}: {err}") from err


def move_link(name: str, *, into: str, rename: str) -> None:
    with _signals_deferred(), IPRoute() as ipr:
        try:
            index = ipr.link_lookup(ifname=name)[0]
            ipr.link("set", index=index, net_ns_fd=into, ifname=rename)
        except (IndexError, NetlinkError) as err:
            raise NetnsError(f"cannot move {name} into {into} as {rename}: {err}") from err


def delete_root_link(name: str) -> None:
    with _signals_deferred(), IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return
        try:
            ipr.link("del", index=found[0])
        except NetlinkError as err:
            if err.code != errno.ENODEV:
                raise NetnsError(f"cannot delete link {name}: {err}") from err


def configure(
    name: str,
    *,
    addresses: Sequence[tuple[str, Interface]],
    routes: Sequence[Route],
) -> None:
    """Bring up lo and each (ifname, address); then add the routes.

    IPv6 addresses skip duplicate address detection (IFA_F_NODAD): each link's two
    addresses are unique by construction, and a tentative address could neither be bound
    by a node starting at once nor be used as a route's source for about two seconds.
    """
    with _signals_deferred(), NetNS(name) as ns:
        try:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            for ifname, address in addresses:
                index = ns.link_lookup(ifname=ifname)[0]
                ns.addr(
                    "add",
                    index=index,
                    address=str(address.ip),
                    prefixlen=address.network.prefixlen,
                    **({"flags": IFA_F_NODAD} if address.version == 6 else {}),
                )
                ns.link("set", index=index, state="up")
            for route in routes:
                ns.route("add", dst=str(route.dst), gateway=str(route.gateway))
        except (IndexError, NetlinkError) as err:
            raise NetnsError(f"cannot configure namespace {name}: {err}") from err


def set_ip_forward(name: str, enabled: bool, *, ipv6: bool = False) -> None:
    """Set IPv4 forwarding in the namespace, and with `ipv6` IPv6 forwarding too."""
    value = "1" if enabled else "0"
    script = f"echo {value} > /proc/sys/net/ipv4/ip_forward"
    if ipv6:
        script += f" && echo {value} > /proc/sys/net/ipv6/conf/all/forwarding"
    result = subprocess.run(
        ns_argv(name, ["sh", "-c", script]),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise NetnsError(f"cannot set ip_forward={value} in {name}: {result.stderr.strip()}")


def pids_in(name: str) -> list[int]:
    """Every process whose network namespace is `name`."""
    if name not in list_netns():
        return []
    result = subprocess.run(
        ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
    )
    return [int(x) for x in result.stdout.split()]


def link_names(name: str) -> list[str]:
    with _signals_deferred(), NetNS(name) as ns:
        return [str(link.get("ifname")) for link in ns.get_links()]
