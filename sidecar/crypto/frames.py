"""Sealing and opening DATA packets for one VLAN.

Send:    plaintext -> counter -> AES-GCM under the sender key -> header || ciphertext
Receive: header -> keys by MLS-ID -> replay check -> decrypt -> replay accept

The plaintext of a DATA packet is a 10-byte offload header (virtio_net_hdr
layout, see docs/protocol.md) followed by the Ethernet frame, or a fragment
of that (flag FRAGMENT, see fragment.py).
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag

from .. import wire
from ..replay import ReplayWindow
from .keys import EpochKeys, KeyProvider

MAX_REPLAY_WINDOWS = 4096
_NONCE_PREFIX = b"\x00\x00\x00\x00"
_U64 = struct.Struct(">Q")
# A sender id lives until its counter would wrap; far beyond any real run.
_COUNTER_LIMIT = 2**64 - 1


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
        self.counter = 0

    def seal(self, *, vft: bytes, plaintext: bytes, hop_limit: int, flags: int = 0) -> bytes:
        epoch = self.keys.current()
        self.counter += 1
        if self.counter >= _COUNTER_LIMIT:
            self.sender, self.counter = os.urandom(8), 1
        header = wire.DataHeader(
            hop_limit, flags, self.vlan_id, epoch.mls_id, vft, self.sender, self.counter
        ).encode()
        nonce = _NONCE_PREFIX + _U64.pack(self.counter)
        return header + epoch.sender_aead(self.sender).encrypt(
            nonce, plaintext, wire.aad_of(header)
        )


class FrameOpener:
    """Authenticates and decrypts incoming DATA packets for one VLAN."""

    def __init__(self, keys: KeyProvider) -> None:
        self.keys = keys
        self._windows: dict[tuple[bytes, bytes], ReplayWindow] = {}

    def open(self, packet: bytes | memoryview, header: wire.DataHeader) -> bytes:
        epoch: EpochKeys | None = self.keys.lookup(header.mls_id)
        if epoch is None:
            raise OpenError("unknown_epoch")
        wkey = (header.mls_id, header.sender)
        window = self._windows.get(wkey)
        if window is not None and not window.check(header.counter):
            raise OpenError("replay")
        nonce = _NONCE_PREFIX + _U64.pack(header.counter)
        mv = memoryview(packet)
        try:
            plaintext = epoch.sender_aead(header.sender).decrypt(
                nonce, mv[wire.DATA_HEADER_LEN :], wire.aad_of(bytes(mv[: wire.DATA_HEADER_LEN]))
            )
        except InvalidTag as err:
            raise OpenError("auth") from err
        if window is None:
            if len(self._windows) >= MAX_REPLAY_WINDOWS:
                # Windows are created only for authenticated packets, so only key
                # holders' sender ids fill this table; evict the oldest (a sender
                # id lives for one node run and epoch).
                self._windows.pop(next(iter(self._windows)))
            window = self._windows[wkey] = ReplayWindow()
        if not window.accept(header.counter):
            raise OpenError("replay")
        return plaintext
