"""Whom a node accepts as a trunk peer, decided on the peer's INTRO.

    open        every peer
    peers       the listed peer ids (and the node's bootstrap peers)
    credential  peers presenting a node credential, for their own key, signed by one of
                the listed authorities and valid now (and the node's bootstrap peers)

Bootstrap peers are always admitted: the node chose to dial them and their multiaddr
pins their peer id. A credential admits a peer until it expires; the node re-checks
then (a renewed credential arrives in a fresh INTRO on the same trunk).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from .. import wire
from ..identity import peer_id_from_public
from ..private import authority as creds
from .credential import decode, verify

Mode = Literal["open", "peers", "credential"]
FOREVER = float("inf")


def pinned_peer_ids(bootstrap: Iterable[str]) -> frozenset[str]:
    """The peer ids a bootstrap list pins: what follows each address's last /p2p/
    (the config admits only addresses that have one)."""
    return frozenset(a.rsplit("/p2p/", 1)[1] for a in bootstrap)


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    reason: str = ""  # why not, as a counter label
    until: float = FOREVER  # wall-clock time the admission ends (credential expiry)
    identity: str = ""  # the credential's identity, if one admitted the peer


class Admission:
    def __init__(
        self,
        *,
        mode: Mode,
        peers: Iterable[str] = (),
        authorities: Iterable[bytes] = (),
        pinned: Iterable[str] = (),
        skew_s: float = 60.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.mode = mode
        self.peers = frozenset(peers)
        self.authorities = frozenset(authorities)
        self.pinned = frozenset(pinned)
        self.skew_s = skew_s
        self._wall = wall
        self._peer_keys: dict[bytes, str] = {}

    def decide(self, peer: str, intro: wire.Intro) -> Verdict:
        if self.mode == "open" or peer in self.pinned:
            return Verdict(True)
        if self.mode == "peers":
            return Verdict(True) if peer in self.peers else Verdict(False, "not_listed")
        reason = "no_credential"
        for data in intro.credentials:
            try:
                cred = decode(data)
                if self._peer_id(cred.node_key) != peer:
                    raise creds.WrongMemberKey("credential is for another node")
                verify(cred, authorities=self.authorities, now=self._wall(), skew_s=self.skew_s)
            except creds.CredentialError as err:
                reason = err.reason
                continue
            return Verdict(True, until=cred.not_after + self.skew_s, identity=cred.identity)
        return Verdict(False, reason)

    def _peer_id(self, key: bytes) -> str:
        # Deriving a peer id costs a protobuf and a multihash; peers reconnect often.
        pid = self._peer_keys.get(key)
        if pid is None:
            if len(self._peer_keys) >= 4096:
                self._peer_keys.clear()
            pid = self._peer_keys[key] = peer_id_from_public(key)
        return pid
