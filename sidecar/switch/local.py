"""What one member port wants to receive: its MACs and multicast groups, with ageing.

The port's own MAC is permanent. Source MACs seen on frames from the TAP (a
bridge or VMs behind it) are learned and age out; multicast groups joined by
IGMP/MLD reports are kept until a leave or until the membership interval
passes without a new report. The wanted token set is announced to the mesh.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .. import vft

MAC_AGEING_S = 300.0
GROUP_MEMBERSHIP_S = 260.0  # RFC 3376 group membership interval
MAX_LEARNED = 1024


class LocalPort:
    def __init__(self, *, own_mac: bytes, clock: Callable[[], float] = time.monotonic) -> None:
        self.own_mac = own_mac
        self._clock = clock
        self.macs: dict[bytes, float] = {}
        self.groups: dict[bytes, float] = {}

    def learn_source(self, mac: bytes) -> bool:
        """Record a source MAC from the TAP; True if it is new (announce it)."""
        if mac == self.own_mac or mac[0] & 1:
            return False
        new = mac not in self.macs
        if new and len(self.macs) >= MAX_LEARNED:
            return False
        self.macs[mac] = self._clock()
        return new

    def join(self, group_mac: bytes) -> bool:
        new = group_mac not in self.groups
        self.groups[group_mac] = self._clock()
        return new

    def leave(self, group_mac: bytes) -> bool:
        return self.groups.pop(group_mac, None) is not None

    def expire(self) -> bool:
        now = self._clock()
        old_macs = [m for m, t in self.macs.items() if now - t > MAC_AGEING_S]
        old_groups = [g for g, t in self.groups.items() if now - t > GROUP_MEMBERSHIP_S]
        for m in old_macs:
            del self.macs[m]
        for g in old_groups:
            del self.groups[g]
        return bool(old_macs or old_groups)

    def tokens(self, tokens: vft.TokenCache) -> set[bytes]:
        wanted = {tokens.broadcast, tokens.unicast(self.own_mac)}
        wanted.update(tokens.unicast(m) for m in self.macs)
        wanted.update(tokens.multicast(g) for g in self.groups)
        return wanted
