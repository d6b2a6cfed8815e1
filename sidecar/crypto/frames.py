"""Sealing and opening DATA packets for one VLAN.

Send:    plaintext -> counter -> AES-GCM under the sender key -> header || ciphertext
Receive: header -> keys by MLS-ID -> replay check -> decrypt -> replay accept

Counters are microsecond stamps (stamps.py): strictly increasing per sender and close
to the sender's clock. Replay windows exist per (MLS-ID, sender id), only for senders
whose packets authenticated; the table is bounded, and a sender without a window is
accepted only above the highest counter of every window ever evicted (the floor), so
flushing the table cannot re-open a replay.

In a private VLAN whose epoch carries a roster (senders.py), packets are also bound to
their sender's leaf: the sender id names the leaf, a trailer carries a tag per intended
receiver, and a receiver opens only packets with a valid tag for itself (`sender_leaf`
then names the sender, for the port's source-MAC check). One sender id per leaf and
epoch means one replay window each: no member can flush another's.

The plaintext of a DATA packet is a 10-byte offload header (virtio_net_hdr
layout, see docs/protocol.md) followed by the Ethernet frame, or a fragment
of that (flag FRAGMENT, see fragment.py).
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .. import stamps, wire
from ..replay import ReplayWindow
from . import senders
from .keys import EpochKeys, KeyProvider

MAX_REPLAY_WINDOWS = 4096
_NONCE_PREFIX = b"\x00\x00\x00\x00"
_U64 = struct.Struct(">Q")
# A sender id lives until its counter would wrap; far beyond any real run.
_COUNTER_LIMIT = 2**64 - 1
# How far ahead of this node's clock an evicted sender's counter may lift the floor.
MAX_FLOOR_LEAD_US = 60 * stamps.US


class OpenError(Exception):
    """A DATA packet that must be dropped; `reason` is the drop counter label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FrameSealer:
    """Encrypts outgoing plaintexts for one VLAN with this node's sender id."""

    def __init__(self, vlan_id: bytes, keys: KeyProvider) -> None:
        self.vlan_id = vlan_id
        self.keys = keys
        self.sender = os.urandom(8)
        self._stamps = stamps.Stamper()
        self.counter = 0

    def seal(
        self,
        *,
        vft: bytes,
        plaintext: bytes,
        hop_limit: int,
        flags: int = 0,
        dst: bytes | None = None,
    ) -> bytes:
        """One DATA packet; `dst` (the frame's destination MAC) picks whom a sender-bound
        packet is tagged for."""
        epoch = self.keys.current()
        self.counter = self._stamps.next()
        if self.counter >= _COUNTER_LIMIT:  # pragma: no cover - year 586,000
            self.sender, self.counter = os.urandom(8), 1
        binding = epoch.binding
        sender = self.sender if binding is None else binding.sender
        if binding is not None:
            flags |= wire.FLAG_SENDER_TAGS
        header = wire.DataHeader(
            hop_limit, flags, self.vlan_id, epoch.mls_id, vft, sender, self.counter
        ).encode()
        nonce = _NONCE_PREFIX + _U64.pack(self.counter)
        aad = wire.aad_of(header)
        if binding is None:
            return header + epoch.sender_aead(sender).encrypt(nonce, plaintext, aad)
        peer = binding.unicast_leaf(dst)
        pair = None if peer is None else binding.pair_aead(peer, binding.own_leaf)
        if pair is not None:
            return header + pair.encrypt(nonce, plaintext, aad) + senders.PAIRWISE
        sealed = epoch.sender_aead(sender).encrypt(nonce, plaintext, aad)
        return header + sealed + binding.trailer(senders.digest(aad, sealed), binding.others)


class FrameOpener:
    """Authenticates and decrypts incoming DATA packets for one VLAN."""

    def __init__(self, keys: KeyProvider, *, max_windows: int = MAX_REPLAY_WINDOWS) -> None:
        self.keys = keys
        self.max_windows = max_windows
        self._windows: dict[tuple[bytes, bytes], ReplayWindow] = {}
        self.floor = 0
        # The leaf that sent the packet `open` last returned, and its epoch's binding
        # (sender-bound epochs only; None otherwise).
        self.sender_leaf: int | None = None
        self.sender_binding: senders.Binding | None = None

    def open(self, packet: bytes | memoryview, header: wire.DataHeader) -> bytes:
        epoch: EpochKeys | None = self.keys.lookup(header.mls_id)
        if epoch is None:
            raise OpenError("unknown_epoch")
        wkey = (header.mls_id, header.sender)
        window = self._windows.get(wkey)
        if window is None:
            if header.counter <= self.floor:
                raise OpenError("replay")
        elif not window.check(header.counter):
            raise OpenError("replay")
        nonce = _NONCE_PREFIX + _U64.pack(header.counter)
        mv = memoryview(packet)
        aad = wire.aad_of(bytes(mv[: wire.DATA_HEADER_LEN]))
        end = len(mv)
        self.sender_leaf = None
        binding = self.sender_binding = epoch.binding
        aead = None
        if binding is not None:
            end, aead = self._check_sender(binding, mv, header, aad)
        elif header.flags & wire.FLAG_SENDER_TAGS:
            raise OpenError("sender_tags_unexpected")
        try:
            if aead is None:
                aead = epoch.sender_aead(header.sender)
            plaintext = aead.decrypt(nonce, mv[wire.DATA_HEADER_LEN : end], aad)
        except InvalidTag as err:
            # A pairwise packet that does not open was not sent by that leaf to us.
            raise OpenError("auth" if binding is None else "sender_tag") from err
        if window is None:
            if len(self._windows) >= self.max_windows:
                # Only key holders' sender ids fill this table. The oldest goes, and the
                # floor rises to its highest counter: none of its packets opens again.
                evicted = self._windows.pop(next(iter(self._windows)))
                cap = stamps.now_us() + MAX_FLOOR_LEAD_US
                self.floor = max(self.floor, min(evicted.highest, cap))
            window = self._windows[wkey] = ReplayWindow()
        if not window.accept(header.counter):
            raise OpenError("replay")
        return plaintext

    def _check_sender(
        self, binding: senders.Binding, mv: memoryview, header: wire.DataHeader, aad: bytes
    ) -> tuple[int, AESGCM | None]:
        """Where the ciphertext ends and, for a pairwise packet, the AEAD that proves its
        sender; for a tagged packet (None) the tag already proved the leaf its sender id
        names and that it is meant for us. OpenError otherwise."""
        if not header.flags & wire.FLAG_SENDER_TAGS:
            raise OpenError("sender_untagged")
        leaf = senders.leaf_of(header.sender)
        if leaf is None or leaf not in binding.members or leaf == binding.own_leaf:
            raise OpenError("sender_unknown")
        try:
            end, count, tag = senders.split_trailer(
                mv, wire.DATA_HEADER_LEN + wire.TAG_LEN, binding.own_leaf
            )
        except ValueError as err:
            raise OpenError("sender_trailer") from err
        if count == 0:
            pair = binding.pair_aead(leaf, leaf)
            if pair is None:
                raise OpenError("sender_unknown")
            self.sender_leaf = leaf
            return end, pair
        if tag is None:
            raise OpenError("sender_not_for_us")
        if not binding.check(leaf, senders.digest(aad, mv[wire.DATA_HEADER_LEN : end]), tag):
            raise OpenError("sender_tag")
        self.sender_leaf = leaf
        return end, None
