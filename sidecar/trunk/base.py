"""Trunk interface: settings, the events the node layer receives, and trunk errors.

A trunk is one long-lived, encrypted libp2p stream per peer that carries opaque
PeerTap records. The node layer (switch, crypto, routing) sees only this module
and the `Trunk` class that implements it (`libp2p_trunk`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

PROTOCOL_ID = "/peertap/trunk/2.0.0"
"""libp2p protocol id of the trunk stream. It names the stream's framing (length-prefixed
records), unchanged since version 2, not the packet version (wire.VERSION): nodes of
packet versions 2 and 3 meet at the INTRO and refuse each other there, with a reason
(docs/protocol.md, section 9)."""

SIMULTANEOUS_OPEN_WINDOW_S = 5.0
"""A trunk younger than this loses to a stream opened by a lower peer id (tie-break)."""

SEED_SIZE = 32

INTRO_TIMEOUT_S = 10.0
"""A peer that has not sent its INTRO record this long after the stream opened is refused."""


class TrunkError(Exception):
    """Base class of trunk errors."""


class TrunkConfigError(TrunkError, ValueError):
    """TrunkSettings hold an unusable value (seed size, address, backoff bounds)."""


@dataclass(frozen=True)
class TrunkSettings:
    seed: bytes
    """32-byte Ed25519 seed: the node identity (same key as peertap.sidecar.identity)."""
    listen: list[str]
    """Multiaddrs to listen on, e.g. /ip4/0.0.0.0/tcp/4001, /ip4/0.0.0.0/tcp/4002/ws."""
    bootstrap: list[str] = field(default_factory=list)
    """Full multiaddrs ending in /p2p/<peer-id>: a trunk to each is kept forever."""
    security: Literal["noise", "tls"] = "noise"
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    queue_bytes: int = 4 * 1024 * 1024
    """Per-peer send queue bound; `Trunk.send` drops (and counts) what does not fit."""
    stall_timeout_s: float = 15.0
    """A peer that accepts no byte of its queued data for this long is disconnected."""
    datagram_port: int | None = None
    """UDP port of the datagram path (0: any free port); None: no datagram path, DATA
    always on the stream. Peers use it only if their INTRO offers it too."""
    datagram_host: str = "0.0.0.0"

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_SIZE:
            raise TrunkConfigError(f"seed must be {SEED_SIZE} bytes, got {len(self.seed)}")
        if self.security not in ("noise", "tls"):
            raise TrunkConfigError(f"security must be 'noise' or 'tls', got {self.security!r}")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise TrunkConfigError(
                "need 0 < reconnect_min_s <= reconnect_max_s, got "
                f"{self.reconnect_min_s} and {self.reconnect_max_s}"
            )
        if self.queue_bytes <= 0:
            raise TrunkConfigError(f"queue_bytes must be positive, got {self.queue_bytes}")
        if self.datagram_port is not None and not 0 <= self.datagram_port <= 65535:
            raise TrunkConfigError(f"datagram_port {self.datagram_port} is not a UDP port")
        if self.stall_timeout_s <= 0:
            raise TrunkConfigError(f"stall_timeout_s must be positive, got {self.stall_timeout_s}")


class TrunkEvents(Protocol):
    """What the node layer is told, and what it decides about a new peer.

    Every trunk stream starts with an introduction: the dialer sends `intro()` as its
    first record, the listener reads it and, only if `admit` accepts it, answers with
    its own; the dialer then decides on the listener's. A peer that is not admitted is
    disconnected before the node sees anything else from it, and is never `peer_up`.
    Calls for one peer never overlap and come in order: peer_up, records calls,
    peer_down. Awaiting `records` is the receive backpressure: the trunk reads no
    more from that peer until it returns.
    """

    def intro(self) -> bytes:
        """This node's INTRO record, sent first on every trunk stream."""
        ...

    def admit(self, peer: str, intro: bytes) -> bool:
        """Whether to accept `peer`, given the first record it sent (its INTRO)."""
        ...

    async def peer_up(self, peer: str) -> None:
        """A trunk stream to `peer` (base58 peer id) is ready."""

    async def peer_down(self, peer: str) -> None:
        """The trunk to `peer` is gone (it is redialed if it is a bootstrap peer)."""

    async def records(self, peer: str, records: list[bytes]) -> None:
        """Every complete record of one stream read; the trunk reads on after this returns."""
