"""An interface's addresses as the kernel has them, followed over netlink.

A TUN member's node answers ARP and neighbour solicitations on the interface's
behalf, so it must know every address the interface holds: the configured one,
the kernel's IPv6 link-local address, SLAAC and DHCP addresses, and any added
later by hand. `AddressWatch` dumps them once and then listens to the kernel's
address notifications (RTMGRP_IPV4_IFADDR and RTMGRP_IPV6_IFADDR); on any
notification the caller re-reads the whole list, which is small and always right
whatever the order of events was.
"""

from __future__ import annotations

import ipaddress
import logging

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR

log = logging.getLogger("peertap.tap")

# Addresses not (or no longer) usable: a duplicate found by DAD, one still being checked.
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
UNUSABLE = IFA_F_DADFAILED | IFA_F_TENTATIVE


def interface_addresses(ifname: str) -> list[str]:
    """The usable addresses of `ifname` as "address/prefix" strings ([] if it is gone)."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            return []
        out: list[str] = []
        for msg in ipr.get_addr(index=found[0]):
            flags = msg.get_attr("IFA_FLAGS") or msg["flags"]
            address = msg.get_attr("IFA_ADDRESS")
            if address is None or flags & UNUSABLE:
                continue
            out.append(str(ipaddress.ip_interface(f"{address}/{msg['prefixlen']}")))
        return sorted(out)


class AddressWatch:
    """Kernel address notifications for this namespace; `fd` turns readable on one."""

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self._ipr = IPRoute()
        self._ipr.bind(groups=RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
        self.fd: int = self._ipr.fileno()

    def drain(self) -> None:
        """Read the pending notifications (call only when `fd` is readable)."""
        self._ipr.get()

    def close(self) -> None:
        self._ipr.close()
