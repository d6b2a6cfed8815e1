"""Frame keys of a private VLAN (security "mls"), one epoch per MLS epoch.

    frame key = MLS-Exporter("peertap frame key", VLAN-ID, 32)   (RFC 9420 8.5)
    MLS-ID, VFT salt, sender keys: derived from the frame key as for open VLANs

The provider sends with the newest epoch and still opens packets of older
epochs for `grace_s` after they were replaced, so frames in flight across an
epoch change are not lost; then it forgets them (drops every reference to the
key and its per-sender ciphers: Python cannot overwrite immutable bytes, so
"erased" means unreachable from the node).

Before the node holds any epoch (joining, or after it was removed) it sends
with a random placeholder key nobody else has: its frames are dropped by every
receiver as `unknown_epoch`, and it opens nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from .keys import EpochKeys
from .senders import Binding, MacBook, Pairing

FRAME_KEY_LABEL = "peertap frame key"
FRAME_KEY_LEN = 32
# Epochs may change several times within one grace window (a burst of joins).
MAX_OLD_EPOCHS = 16
NO_EPOCH = -1


def frame_key_from_exporter(export: Callable[[str, bytes, int], bytes], vlan_id: bytes) -> bytes:
    """The frame key of an epoch, given the group's `export_secret(label, context, length)`."""
    return export(FRAME_KEY_LABEL, vlan_id, FRAME_KEY_LEN)


class MlsKeyProvider:
    """KeyProvider for one private VLAN, fed by the VLAN's MLS group each epoch."""

    def __init__(
        self,
        *,
        vlan_id: bytes,
        grace_s: float,
        clock: Callable[[], float] = time.monotonic,
        pairing: Pairing | None = None,
    ) -> None:
        self.vlan_id = vlan_id
        # With `pairing` (this node's key), epochs installed with their roster are
        # sender-bound (senders.py); without it, frames carry no sender tags.
        self.pairing = pairing
        self.macs = MacBook(vlan_id)
        self.grace_s = grace_s
        self._clock = clock
        self._current = self._placeholder()
        self._joined = False
        # mls_id -> (keys, forget at)
        self._old: dict[bytes, tuple[EpochKeys, float]] = {}

    @staticmethod
    def _placeholder() -> EpochKeys:
        return EpochKeys(epoch=NO_EPOCH, frame_key=os.urandom(FRAME_KEY_LEN))

    @property
    def joined(self) -> bool:
        return self._joined

    def install(
        self,
        *,
        epoch: int,
        frame_key: bytes,
        own_leaf: int | None = None,
        members: Mapping[int, bytes] | None = None,
    ) -> EpochKeys:
        """Make `frame_key` the current epoch; the previous one enters its grace window.
        `members` (leaf index -> node key) and `own_leaf` bind its frames to senders."""
        binding = None
        if self.pairing is not None and members is not None and own_leaf is not None:
            self.macs.members(members.values())
            binding = Binding(
                frame_key=frame_key,
                own_leaf=own_leaf,
                members=members,
                pairing=self.pairing,
                macs=self.macs,
            )
        keys = EpochKeys(epoch=epoch, frame_key=frame_key, binding=binding)
        if keys.mls_id == self._current.mls_id:
            return self._current
        if self._joined:
            self._retire(self._current)
        self._current = keys
        self._joined = True
        self.expire()
        return keys

    def claim_mac(self, key: bytes, mac: bytes) -> bool:
        """A member (node key) claimed `mac` in a MAC probe; False if another owns it."""
        return self.macs.claim(key, mac)

    def leave(self) -> None:
        """We are no longer a member: keep the old keys only for the grace window."""
        if self._joined:
            self._retire(self._current)
        self._current = self._placeholder()
        self._joined = False

    def _retire(self, keys: EpochKeys) -> None:
        self._old[keys.mls_id] = (keys, self._clock() + self.grace_s)
        while len(self._old) > MAX_OLD_EPOCHS:
            self._old.pop(next(iter(self._old)))

    def expire(self) -> None:
        """Forget every old epoch whose grace window is over."""
        now = self._clock()
        for mls_id in [m for m, (_, until) in self._old.items() if until <= now]:
            del self._old[mls_id]

    def held_mls_ids(self) -> list[bytes]:
        """MLS-IDs whose keys this node can still open (current first)."""
        self.expire()
        return ([self._current.mls_id] if self._joined else []) + list(self._old)

    # -- KeyProvider -------------------------------------------------------------------

    def current(self) -> EpochKeys:
        return self._current

    def accepted(self) -> list[EpochKeys]:
        self.expire()
        return [self._current, *(k for k, _ in self._old.values())]

    def lookup(self, mls_id: bytes) -> EpochKeys | None:
        if self._joined and mls_id == self._current.mls_id:
            return self._current
        entry = self._old.get(mls_id)
        if entry is None:
            return None
        keys, until = entry
        if until <= self._clock():
            del self._old[mls_id]
            return None
        return keys
