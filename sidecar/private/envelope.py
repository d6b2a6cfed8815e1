"""Signing and verifying CONTROL packets with the node's Ed25519 key.

The signature covers wire.CONTROL_CONTEXT || every byte after the 4-byte
prefix up to the signature, so relays may lower the hop limit and nothing else.
"""

from __future__ import annotations

import dataclasses

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .. import wire
from ..identity import Identity


def sign(
    node: Identity,
    *,
    hop_limit: int,
    timestamp: int,
    vlan_id: bytes,
    kind: int,
    body: bytes,
) -> wire.Control:
    unsigned = wire.Control(hop_limit, timestamp, vlan_id, kind, node.public_bytes, body)
    return dataclasses.replace(unsigned, signature=node.private_key.sign(unsigned.signed_part()))


def verify(msg: wire.Control) -> bool:
    """True if the signer's key signed this message."""
    try:
        Ed25519PublicKey.from_public_bytes(msg.signer).verify(msg.signature, msg.signed_part())
    except (InvalidSignature, ValueError):
        return False
    return True
