"""MAC collision probe of a private VLAN (docs/protocol.md, "MAC collision probe").

A member's MAC is the low 48 bits of BLAKE3(node key || VLAN-ID || nonce) (ids.py),
nonce 16 zero bytes at start, so two members collide with probability about
n^2 / 2^47. Inside the group each member claims its MAC:

    PROBE(mac)     sent after joining and every HELLO interval
    RESPONSE(mac)  sent by a member whose own MAC is `mac` when it hears the PROBE

Both travel MLS-encrypted (PrivateMessage of the current epoch) in a MACPROBE CONTROL
packet, so relays and outsiders learn no MAC. A member that hears a RESPONSE for its
own MAC lost: it re-rolls (a random nonce) and probes again at once. A MAC set in the
configuration is kept (an operator's choice); its collision is only counted and logged.

Every PROBE and RESPONSE is also a claim that binds the MAC to the sender's leaf for
the data plane (crypto/senders.py, `bind_claim`): the first member to claim a MAC
owns it, and no claim takes a MAC derived from another member's key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from .. import ids
from ..counters import Counters
from ..crypto.mls_keys import MlsKeyProvider
from ..mls import Group
from ..mls.group import ProcessedMessage
from .messages import MalformedControl

log = logging.getLogger("peertap.private")

PROBE = 1
RESPONSE = 2
MAC_LEN = 6
NONCE_LEN = 16


@dataclass(frozen=True)
class MacMessage:
    """Application data of a MACPROBE: op (1) || MAC (6)."""

    op: int
    mac: bytes

    def encode(self) -> bytes:
        return bytes([self.op]) + self.mac

    @classmethod
    def decode(cls, data: bytes) -> MacMessage:
        if len(data) != 1 + MAC_LEN or data[0] not in (PROBE, RESPONSE):
            raise MalformedControl(f"MAC probe message of {len(data)} bytes")
        return cls(data[0], data[1:])


class MacClaim:
    """This member's MAC on one VLAN: answers probes, re-rolls after losing one."""

    def __init__(
        self,
        *,
        public: bytes,
        vlan_id: bytes,
        mac: bytes,
        derived: bool,
        on_change: Callable[[bytes], None] = lambda mac: None,
    ) -> None:
        self.public = public
        self.vlan_id = vlan_id
        self.mac = mac
        self.derived = derived
        self._on_change = on_change
        self.collisions = 0
        self.rerolls = 0

    def probe(self) -> MacMessage:
        return MacMessage(PROBE, self.mac)

    def on_message(self, msg: MacMessage) -> MacMessage | None:
        """Handle a peer's PROBE or RESPONSE; returns the RESPONSE to send, if any."""
        if msg.mac != self.mac:
            return None
        if msg.op == PROBE:
            return MacMessage(RESPONSE, self.mac)
        self.collisions += 1
        if not self.derived:
            log.warning(
                "vlan %s: another member uses the configured MAC %s",
                self.vlan_id.hex(),
                ids.mac_str(self.mac),
            )
            return None
        self.reroll()
        return None

    def reroll(self) -> None:
        old = self.mac
        while self.mac == old:
            self.mac = ids.member_mac(self.public, self.vlan_id, os.urandom(NONCE_LEN))
        self.rerolls += 1
        log.warning(
            "vlan %s: MAC %s is taken; now %s",
            self.vlan_id.hex(),
            ids.mac_str(old),
            ids.mac_str(self.mac),
        )
        self._on_change(self.mac)


class MacProber:
    """When this member probes and what it answers; the caller seals and sends the bytes."""

    def __init__(self, claim: MacClaim, *, counters: Counters) -> None:
        self.claim = claim
        self.counters = counters
        self._last_probe = float("-inf")
        self._replies: list[MacMessage] = []

    def restart(self) -> None:
        """Probe at the next chance (we just joined a group, or re-rolled)."""
        self._last_probe = float("-inf")

    def receive(self, data: bytes) -> bool:
        """A peer's decrypted PROBE or RESPONSE; True if we have something to send now."""
        claim = self.claim
        before, collisions = claim.mac, claim.collisions
        reply = claim.on_message(MacMessage.decode(data))
        if reply is not None:
            self._replies.append(reply)
        if claim.mac != before:
            self.counters.inc("mac_rerolled")
            self.restart()
            return True
        if claim.collisions != collisions:
            self.counters.inc("mac_collision_configured")
        return reply is not None

    def outgoing(self, *, now: float, interval: float) -> list[bytes]:
        """Answers owed, and our PROBE if one is due (every `interval`)."""
        out, self._replies = self._replies, []
        if now - self._last_probe >= interval:
            self._last_probe = now
            out.append(self.claim.probe())
        return [msg.encode() for msg in out]


def bind_claim(
    keys: MlsKeyProvider, group: Group, processed: ProcessedMessage, counters: Counters
) -> None:
    """Bind the MAC a member's PROBE or RESPONSE names to that member's key (first claim
    wins); a claim of a MAC that belongs to another member is counted and ignored."""
    data = processed.application_data
    if data is None:
        return
    msg = MacMessage.decode(data)
    key = next(
        (x.signature_key for x in group.members() if x.index == processed.sender.index), None
    )
    if key is not None and not keys.claim_mac(key, msg.mac):
        counters.drop("mac_claim_taken")


def set_link_mac(ifname: str, mac: bytes) -> None:
    """Give the kernel interface `ifname` (a member's TAP) the MAC `mac`."""
    from pyroute2 import IPRoute  # only nodes with a TAP need netlink

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        ipr.link("set", index=index, address=ids.mac_str(mac))
