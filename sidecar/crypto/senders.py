"""Sender-bound frames of private VLANs (docs/protocol.md, "Sender-bound frames").

The group frame key lets any member encrypt as any sender id, so on its own it
only says "some member sent this". Here each DATA packet is bound to its sender's
MLS leaf with pairwise tags, and each source MAC to a leaf:

- Every two members share a secret nobody else has: X25519 between their node keys
  (Ed25519 keys mapped to Curve25519, RFC 7748 section 4.1, as libsodium does).
  Per epoch, pair key = BLAKE3-keyed(frame key, PAIR_LABEL || DH || lower key ||
  higher key), 32 bytes: it dies with the epoch, and an outsider lacks the frame key.
- A packet's sender id is its leaf index (u32) followed by four zero bytes.
- A unicast frame to a member (its destination MAC belongs to that member) is
  encrypted under a pairwise key instead of the group's: AES-256-GCM with key
  BLAKE3-keyed(pair key, PAIR_FRAME_LABEL || sender id); its trailer is just a zero
  count. Only sender and receiver hold that key, so the AEAD itself proves the sender
  (and no other member can read the frame). This is the bulk of the traffic, and costs
  no more than the group key.
- Every other frame (broadcast, multicast, unknown unicast) is encrypted under the
  group key and carries, after the ciphertext, a tag for every other member:
  tag = BLAKE3-keyed(pair key, H), first 8 bytes, where H = BLAKE3-256(AAD ||
  ciphertext). A receiver accepts the packet only with a valid tag for its own leaf
  from the key of the leaf the sender id names.
- A member's frames must carry a source MAC bound to its leaf: the MAC derived from
  its key (ids.member_mac with the all-zero nonce), or one it claimed first in a
  MAC probe (re-rolled or configured MACs). A MAC derived from another member's key
  is never taken by a claim.

So a member can neither send as another leaf (it lacks the other's pair keys), nor
use another member's MAC, nor open more than one replay window per epoch (one
sender id per leaf), so it cannot flush others' windows to replay their frames.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

import blake3
import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .. import ids

PAIR_LABEL = b"peertap/v2 pair key"
PAIR_FRAME_LABEL = b"peertap/v2 pair frame key"
# The trailer of a pairwise-encrypted packet: no tag entries.
PAIRWISE = b"\x00\x00"
TAG_LEN = 8
ENTRY = struct.Struct(">I8s")
COUNT = struct.Struct(">H")
ZERO_NONCE = bytes(16)
# A MAC claim map stays bounded whatever members claim (each member claims one at a time).
MAX_CLAIMS = 65536
MAX_PEERS = 65536


class Pairing:
    """This node's Curve25519 secret (from its Ed25519 seed) and the DH with each peer."""

    def __init__(self, seed: bytes, public: bytes) -> None:
        self.public = public
        self._secret = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(seed + public)
        self._shared: dict[bytes, bytes | None] = {}

    def shared(self, peer: bytes) -> bytes | None:
        """X25519(our secret, peer's key mapped to Curve25519); None for an unusable key."""
        if peer in self._shared:
            return self._shared[peer]
        try:
            dh: bytes | None = nacl.bindings.crypto_scalarmult(
                self._secret, nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(peer)
            )
        except (nacl.exceptions.CryptoError, nacl.exceptions.RuntimeError, ValueError):
            dh = None  # a small-order or malformed key: libsodium refuses it
        if len(self._shared) >= MAX_PEERS:
            self._shared.clear()
        self._shared[peer] = dh
        return dh


def pair_key(frame_key: bytes, dh: bytes, a: bytes, b: bytes) -> bytes:
    lo, hi = sorted((a, b))
    return blake3.blake3(PAIR_LABEL + dh + lo + hi, key=frame_key).digest(32)


def sender_id(leaf: int) -> bytes:
    return leaf.to_bytes(4, "big") + bytes(4)


def leaf_of(sender: bytes) -> int | None:
    """The leaf a sender id names, or None if it is not a leaf-bound id."""
    if sender[4:] != bytes(4):
        return None
    return int.from_bytes(sender[:4], "big")


def digest(aad: bytes, ciphertext: bytes | memoryview) -> bytes:
    """H = BLAKE3-256(AAD || ciphertext): one hash of the packet that every tag covers."""
    if len(ciphertext) <= 2048:  # one call and a small copy beat two calls
        return blake3.blake3(aad + bytes(ciphertext)).digest()
    h = blake3.blake3(aad)
    h.update(ciphertext)
    return h.digest()


class MacBook:
    """Which member key each source MAC belongs to, on one VLAN (kept across epochs)."""

    def __init__(self, vlan_id: bytes) -> None:
        self.vlan_id = vlan_id
        self._derived: dict[bytes, bytes] = {}
        self._claimed: dict[bytes, bytes] = {}

    def members(self, keys: Iterable[bytes]) -> None:
        """The group's member keys now: their derived MACs, and claims of members only."""
        keys = set(keys)
        self._derived = {ids.member_mac(k, self.vlan_id, ZERO_NONCE): k for k in keys}
        self._claimed = {m: k for m, k in self._claimed.items() if k in keys}

    def claim(self, key: bytes, mac: bytes) -> bool:
        """A member claimed `mac` (MAC probe): first claim wins, derived MACs are taken."""
        owner = self.owner(mac)
        if owner is not None:
            return owner == key
        if len(self._claimed) >= MAX_CLAIMS:
            return False
        self._claimed[mac] = key
        return True

    def owner(self, mac: bytes) -> bytes | None:
        return self._derived.get(mac) or self._claimed.get(mac)


class Binding:
    """One epoch's roster (leaf -> member key) and pair keys; seals and checks tags."""

    def __init__(
        self,
        *,
        frame_key: bytes,
        own_leaf: int,
        members: Mapping[int, bytes],
        pairing: Pairing,
        macs: MacBook,
    ) -> None:
        self.frame_key = frame_key
        self.own_leaf = own_leaf
        self.members = dict(members)
        self.leaf_by_key = {k: i for i, k in self.members.items()}
        self.pairing = pairing
        self.macs = macs
        self.sender = sender_id(own_leaf)
        self.others = [i for i in self.members if i != own_leaf]
        # The largest trailer this epoch's packets carry (one entry per other member).
        self.max_trailer = COUNT.size + ENTRY.size * len(self.others)
        self._pair: dict[int, bytes | None] = {}
        self._aeads: dict[tuple[int, int], AESGCM | None] = {}

    def pair_key(self, leaf: int) -> bytes | None:
        if leaf in self._pair:
            return self._pair[leaf]
        peer = self.members.get(leaf)
        key = None
        if peer is not None and leaf != self.own_leaf:
            dh = self.pairing.shared(peer)
            if dh is not None:
                key = pair_key(self.frame_key, dh, self.pairing.public, peer)
        self._pair[leaf] = key
        return key

    def pair_aead(self, peer: int, sender: int) -> AESGCM | None:
        """AES-256-GCM under the pairwise key of (us, `peer`) for packets `sender` sends
        (the sender's id is in the key, so the two directions never share a nonce)."""
        if (peer, sender) in self._aeads:
            return self._aeads[(peer, sender)]
        key = self.pair_key(peer)
        aead = None
        if key is not None:
            aead = AESGCM(blake3.blake3(PAIR_FRAME_LABEL + sender_id(sender), key=key).digest())
        self._aeads[(peer, sender)] = aead
        return aead

    def unicast_leaf(self, dst: bytes | None) -> int | None:
        """The other member that owns unicast MAC `dst`, if any."""
        if dst is None or dst[0] & 1:
            return None
        owner = self.macs.owner(dst)
        leaf = None if owner is None else self.leaf_by_key.get(owner)
        return None if leaf == self.own_leaf else leaf

    def trailer_for(self, dst: bytes | None) -> int:
        """Bytes of trailer a packet of a frame to `dst` carries (pairwise or tagged)."""
        leaf = self.unicast_leaf(dst)
        if leaf is not None and self.pair_aead(leaf, self.own_leaf) is not None:
            return len(PAIRWISE)
        return self.max_trailer

    def receivers(self, dst: bytes | None) -> list[int]:
        """Leaves a frame to `dst` is tagged for: its owner if that is a known member, else
        every other member (broadcast, multicast, unknown unicast)."""
        leaf = self.unicast_leaf(dst)
        return self.others if leaf is None else [leaf]

    def trailer(self, h: bytes, receivers: Iterable[int]) -> bytes:
        entries = []
        for leaf in receivers:
            key = self.pair_key(leaf)
            if key is not None:
                entries.append(ENTRY.pack(leaf, blake3.blake3(h, key=key).digest(TAG_LEN)))
        return b"".join(entries) + COUNT.pack(len(entries))

    def check(self, sender_leaf: int, h: bytes, tag: bytes) -> bool:
        key = self.pair_key(sender_leaf)
        return key is not None and blake3.blake3(h, key=key).digest(TAG_LEN) == tag

    def mac_ok(self, sender_leaf: int, mac: bytes) -> bool:
        owner = self.macs.owner(mac)
        return owner is not None and owner == self.members.get(sender_leaf)


def split_trailer(
    packet: bytes | memoryview, start: int, own_leaf: int
) -> tuple[int, int, bytes | None]:
    """(where the trailer starts, its entry count, our tag or None); ValueError if the
    trailer is malformed."""
    end = len(packet)
    if end - start < COUNT.size:
        raise ValueError("no trailer")
    (n,) = COUNT.unpack_from(packet, end - COUNT.size)
    begin = end - COUNT.size - n * ENTRY.size
    if begin < start:
        raise ValueError("trailer longer than the packet")
    mine = None
    for off in range(begin, end - COUNT.size, ENTRY.size):
        leaf, tag = ENTRY.unpack_from(packet, off)
        if leaf == own_leaf:
            mine = bytes(tag)
            break
    return begin, n, mine
