"""Address allocation from a CryptoVLAN's subnet: pure functions over a record of allocations.

The record (member key -> address with prefix) lives in the VLAN's ConfigMap, so
allocations survive operator restarts. The network and broadcast addresses of
IPv4 subnets are never handed out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class IpamError(Exception):
    """The subnet is invalid or has no free address left."""


def parse_subnet(text: str) -> Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as err:
        raise IpamError(f"ipam.subnet {text!r} is not a valid network CIDR: {err}") from err
    if net.num_addresses < 4:
        raise IpamError(f"ipam.subnet {text!r} is too small (needs at least 4 addresses)")
    return net


def _usable(net: Network) -> Iterable[Address]:
    if isinstance(net, ipaddress.IPv4Network):
        return net.hosts()
    # IPv6 has no broadcast; skip the all-zero subnet-router anycast address.
    return (net.network_address + i for i in range(1, net.num_addresses))


def allocate(
    *,
    subnet: Network,
    existing: Mapping[str, str],
    wanted: Iterable[str],
    partial: bool = False,
) -> dict[str, str]:
    """Keep valid existing allocations of wanted members, give new members the lowest free ones.

    Allocations of members no longer wanted are released. When the subnet is
    exhausted: IpamError, or with `partial` the members that did not fit are
    left out of the result (in sorted order, so the same ones wait each time).
    """
    wanted_sorted = sorted(set(wanted))
    result: dict[str, str] = {}
    taken: set[Address] = set()
    usable_check = _usable_predicate(subnet)
    for key in wanted_sorted:
        current = existing.get(key)
        if current is None:
            continue
        try:
            iface = ipaddress.ip_interface(current)
        except ValueError:
            continue
        if iface.network != subnet or not usable_check(iface.ip) or iface.ip in taken:
            continue
        taken.add(iface.ip)
        result[key] = str(iface)
    free = (ip for ip in _usable(subnet) if ip not in taken)
    for key in wanted_sorted:
        if key in result:
            continue
        ip = next(free, None)
        if ip is None:
            if partial:
                break
            raise IpamError(f"subnet {subnet} has no free address for member {key!r}")
        taken.add(ip)
        result[key] = f"{ip}/{subnet.prefixlen}"
    return result


def _usable_predicate(net: Network) -> Callable[[Address], bool]:
    def check(ip: Address) -> bool:
        if ip not in net:
            return False
        if isinstance(net, ipaddress.IPv4Network):
            return ip not in (net.network_address, net.broadcast_address)
        return ip != net.network_address

    return check
