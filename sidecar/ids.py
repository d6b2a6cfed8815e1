"""Identifiers derived with BLAKE3: VLAN-IDs, member MACs, MLS-IDs.

VLAN-ID = BLAKE3-128(creator public key || label), 16 bytes, static.
Member MAC = low 48 bits of BLAKE3(public key || VLAN-ID || nonce), with the
locally-administered bit set and the multicast bit cleared.
"""

from __future__ import annotations

import os

import blake3

VLAN_ID_LEN = 16
MLS_ID_LEN = 16


def vlan_id(creator: bytes, label: str) -> bytes:
    if len(creator) != 32:
        raise ValueError("creator must be a 32-byte Ed25519 public key")
    return blake3.blake3(creator + label.encode("utf-8")).digest(VLAN_ID_LEN)


def vlan_id_hex(creator_hex: str, label: str) -> str:
    return vlan_id(bytes.fromhex(creator_hex), label).hex()


def member_mac(public: bytes, vid: bytes, nonce: bytes | None = None) -> bytes:
    """A unicast, locally administered MAC; a fresh nonce re-rolls it after a collision."""
    digest = blake3.blake3(public + vid + (nonce if nonce is not None else os.urandom(16))).digest()
    mac = bytearray(digest[-6:])
    mac[0] = (mac[0] | 0x02) & 0xFE
    return bytes(mac)


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def mac_bytes(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))
