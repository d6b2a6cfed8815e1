"""The node's admission gate: INTROs in and out, and who is admitted right now.

    stream opens -> intro() sent / admit(peer, INTRO): policy decides -> pending
    peer_up -> up(): the admission takes effect (bounded pending table before that)
    housekeeping -> expired(now): trunks whose credential ran out, to be closed
    a later INTRO on a live trunk -> admit() again: renewed, or refused (close it)

Refusals are counted `admission_refused` and `admission_refused_<reason>`.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import identity, wire
from ..counters import Counters
from .files import OwnCredentials
from .policy import Admission, Verdict

log = logging.getLogger("peertap.admission")

MAX_PENDING = 1024


class AdmissionGate:
    def __init__(
        self,
        *,
        policy: Admission,
        credentials: OwnCredentials,
        relay: bool,
        counters: Counters,
        datagram: bool = False,
    ) -> None:
        self.policy = policy
        self.datagram = datagram
        self.credentials = credentials
        self.relay = relay
        self.counters = counters
        # Admitted peers whose trunk is up, with their node keys; those admitted whose
        # trunk is not up yet wait in `_pending` (peers that connect and vanish).
        self._admitted: dict[str, Verdict] = {}
        self._keys: dict[str, bytes] = {}
        self._pending: dict[str, tuple[Verdict, bytes]] = {}

    def intro(self) -> bytes:
        roles = (wire.ROLE_RELAY if self.relay else 0) | (
            wire.ROLE_DATAGRAM if self.datagram else 0
        )
        return wire.Intro(roles=roles, credentials=self.credentials.encoded).encode()

    def admit(self, peer: str, intro: bytes) -> bool:
        try:
            decoded = wire.decode_intro(intro)
            if wire.common_version(decoded.lowest, decoded.highest) is None:
                # No protocol version in common: nothing it sends could be understood.
                verdict = Verdict(False, "version")
                log.info(
                    "trunk peer %s speaks versions %d..%d, this node %d..%d",
                    peer,
                    decoded.lowest,
                    decoded.highest,
                    wire.LOWEST_VERSION,
                    wire.VERSION,
                )
            else:
                verdict = self.policy.decide(peer, decoded)
        except wire.MalformedPacket as err:
            verdict = Verdict(False, f"malformed_{err.reason}")
        key = b""
        if verdict.admitted:
            try:
                key = identity.public_from_peer_id(peer)
            except ValueError:
                verdict = Verdict(False, "not_ed25519")
        if not verdict.admitted:
            self.counters.drop("admission_refused")
            self.counters.drop(f"admission_refused_{verdict.reason}")
            log.info("refused trunk peer %s: %s", peer, verdict.reason)
            self._admitted.pop(peer, None)
            return False
        if peer in self._admitted:  # a fresh INTRO on a trunk that is up
            self._admitted[peer] = verdict
            return True
        if len(self._pending) >= MAX_PENDING:
            self._pending.pop(next(iter(self._pending)))
        self._pending[peer] = (verdict, key)
        return True

    def up(self, peer: str) -> bool:
        """The peer's trunk came up; False if it was never admitted (close it)."""
        pending = self._pending.pop(peer, None)
        if pending is None:
            return False
        self._admitted[peer], self._keys[peer] = pending
        return True

    def down(self, peer: str) -> None:
        self._admitted.pop(peer, None)
        self._keys.pop(peer, None)

    def key(self, peer: str) -> bytes | None:
        """The node key of an admitted peer whose trunk is up."""
        return self._keys.get(peer)

    def expired(self, now: float) -> list[str]:
        """Peers whose admission ran out (counted `admission_expired`); forgets them."""
        gone = [p for p, v in self._admitted.items() if v.until <= now]
        for peer in gone:
            log.info("admission of %s (%s) expired", peer, self._admitted.pop(peer).identity)
            self.counters.drop("admission_expired")
        return gone

    def status(self) -> dict[str, Any]:
        return {
            "mode": self.policy.mode,
            "admitted": {p: v.identity or None for p, v in sorted(self._admitted.items())},
        }
