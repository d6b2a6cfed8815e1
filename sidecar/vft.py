"""VLAN Forwarding Tokens: the opaque 16-byte labels relays forward by.

unicast   = BLAKE3-128(destination MAC || VLAN-ID || salt)
broadcast = BLAKE3-128(ff:ff:ff:ff:ff:ff || VLAN-ID || salt)
multicast = BLAKE3-128(group MAC || VLAN-ID || salt)         group MAC mapped from the IP group

The salt comes from the epoch's frame key (keys.EpochKeys), so only key holders can
compute a token: a relay cannot test guesses of a VLAN-ID, a MAC or a multicast group
against the tokens it forwards by, and tokens change with every key epoch.

Frames whose destination is flooded on a LAN (broadcast, link-local multicast,
non-IP multicast) use the broadcast token; see switch/classify.py.
"""

from __future__ import annotations

import blake3

VFT_LEN = 16
BROADCAST_MAC = b"\xff" * 6


def unicast(mac: bytes, vlan_id: bytes, salt: bytes) -> bytes:
    return blake3.blake3(mac + vlan_id + salt).digest(VFT_LEN)


def broadcast(vlan_id: bytes, salt: bytes) -> bytes:
    return blake3.blake3(BROADCAST_MAC + vlan_id + salt).digest(VFT_LEN)


def multicast(group_mac: bytes, vlan_id: bytes, salt: bytes) -> bytes:
    return blake3.blake3(group_mac + vlan_id + salt).digest(VFT_LEN)


class TokenCache:
    """Memoises tokens for one VLAN and salt; the send path asks for the same few MACs."""

    __slots__ = ("_cache", "broadcast", "salt", "vlan_id")

    def __init__(self, vlan_id: bytes, salt: bytes) -> None:
        self.vlan_id = vlan_id
        self.salt = salt
        self.broadcast = broadcast(vlan_id, salt)
        self._cache: dict[bytes, bytes] = {}

    def unicast(self, mac: bytes) -> bytes:
        t = self._cache.get(mac)
        if t is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            t = self._cache[mac] = unicast(mac, self.vlan_id, self.salt)
        return t

    def multicast(self, group_mac: bytes) -> bytes:
        key = b"m" + group_mac
        t = self._cache.get(key)
        if t is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            t = self._cache[key] = multicast(group_mac, self.vlan_id, self.salt)
        return t
