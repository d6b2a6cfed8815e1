"""Frame keys per VLAN and epoch, behind the KeyProvider interface.

A VLAN's data plane asks its KeyProvider for the current epoch's keys (to send)
and for the keys of an MLS-ID seen in a packet (to receive). Public VLANs have a
single epoch keyed by the creator key and label (never by anything that travels on
the wire); psk VLANs (psk_keys.py) one epoch per pre-shared secret; MLS VLANs
(mls_keys.py) one per MLS epoch, keeping older epochs for a grace window.

Per-sender keys: each sender's packets use AES-256-GCM under
BLAKE3-keyed(frame key, "peertap/v1 sender key" || sender), with nonce
0x00000000 || counter. Senders pick a random 8-byte id, so no two senders share
a key and a (key, nonce) pair never repeats as long as counters increase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import blake3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from .senders import Binding

PUBLIC_KEY_CONTEXT = "peertap/v2 public-vlan frame key"
MLS_ID_CONTEXT = "peertap/v1 mls-id"
SALT_CONTEXT = "peertap/v1 vft salt"
SENDER_KEY_LABEL = b"peertap/v1 sender key"
MAX_SENDERS = 4096


@dataclass
class EpochKeys:
    """Everything the data plane needs for one key epoch of one VLAN."""

    epoch: int
    frame_key: bytes
    mls_id: bytes = b""
    vft_salt: bytes = b""
    # Private VLANs: the epoch's roster and pair keys; its packets must be sender-bound.
    binding: Binding | None = None
    _senders: dict[bytes, AESGCM] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.frame_key) != 32:
            raise ValueError("frame key must be 32 bytes")
        # The MLS-ID is a one-way function of the key: it names the epoch and reveals nothing.
        if not self.mls_id:
            self.mls_id = blake3.blake3(self.frame_key, derive_key_context=MLS_ID_CONTEXT).digest(
                16
            )
        if not self.vft_salt:
            self.vft_salt = blake3.blake3(self.frame_key, derive_key_context=SALT_CONTEXT).digest(
                16
            )

    def sender_aead(self, sender: bytes) -> AESGCM:
        aead = self._senders.get(sender)
        if aead is None:
            if len(self._senders) >= MAX_SENDERS:
                # Bounded: hostile traffic with random sender ids must not grow memory.
                self._senders.clear()
            key = blake3.blake3(SENDER_KEY_LABEL + sender, key=self.frame_key).digest(32)
            aead = self._senders[sender] = AESGCM(key)
        return aead


class KeyProvider(Protocol):
    """Source of frame keys for one VLAN."""

    def current(self) -> EpochKeys:
        """Keys to send with now."""
        ...

    def lookup(self, mls_id: bytes) -> EpochKeys | None:
        """Keys for a received packet's MLS-ID: current or still in its grace window."""
        ...

    def accepted(self) -> list[EpochKeys]:
        """Every epoch whose packets are opened now, current first: the port wants the
        tokens of each, so peers still sending under an older key are not cut off."""
        ...


class PublicKeyProvider:
    """security "public": one epoch whose key is derived from the creator key and label.

    Anyone who knows both (they are configuration, not secrets) can derive it; the
    VLAN-ID on the wire is a one-way hash of them, so a relay that sees only packets
    cannot. Confidentiality against whoever does not know the label, nothing more.
    """

    def __init__(self, creator: bytes, label: str) -> None:
        key = blake3.blake3(
            creator + label.encode("utf-8"), derive_key_context=PUBLIC_KEY_CONTEXT
        ).digest(32)
        self._keys = EpochKeys(epoch=0, frame_key=key)

    def current(self) -> EpochKeys:
        return self._keys

    def lookup(self, mls_id: bytes) -> EpochKeys | None:
        return self._keys if mls_id == self._keys.mls_id else None

    def accepted(self) -> list[EpochKeys]:
        return [self._keys]
