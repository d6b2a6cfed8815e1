"""The node's management VLAN: CONTROL packets in and out, and its private VLANs.

The node hands every CONTROL packet to `on_control` and starts `run`. Here:

    receive: trunk rate limit -> decode -> timestamp within the skew window
             -> verify the node signature -> signer rate limit
             -> once per (signer, timestamp) (freshness.StampGuard)
             -> the PrivateVlan of that VLAN-ID, if we are a member
             -> relays whose ACL allows the VLAN flood it on (hop limit - 1);
                a DIRECTED message goes only toward its destinations if routes.py
                learned the way (from the trunks their own packets came in on)
    send:    PrivateVlan -> stamp and sign with the node key -> every trunk peer
             (a DIRECTED message: only the trunks toward its destinations, if known)

A replayed CONTROL packet of any age changes nothing: old ones fail the window,
recent ones the per-signer stamp guard, and neither a flood of junk nor of
self-signed messages can flush what the guard remembers (see freshness.py). A relay
floods CONTROL only for VLANs its ACL forwards, like their DATA. What a relay learns
from them is documented in docs/protocol.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import trio

from .. import stamps, wire
from ..config import LimitsConfig, VlanConfig
from ..counters import Counters
from ..crypto.mls_keys import MlsKeyProvider
from ..crypto.senders import Pairing
from ..freshness import StampGuard, in_window
from ..identity import Identity
from ..ratelimit import KeyedBuckets
from ..switch.acl import Acl
from . import authority, envelope
from . import messages as m
from .hello_cache import HelloCache
from .lifecycle import PrivateSettings
from .macprobe import MacClaim
from .revocation import RevocationBook, RevocationFile, RevocationSpreader
from .routes import Routes
from .vlan import PrivateVlan

log = logging.getLogger("peertap.mvlan")

Send = Callable[[str, list[bytes]], bool]
PEER_WATCH_S = 0.25


class CredentialFileError(OSError):
    """A private VLAN's credential file is missing or unreadable."""


class CredentialFile:
    """A credential file that the operator may rewrite (renewal); re-read when it changes."""

    def __init__(self, path: Path, *, label: str) -> None:
        self.path = path
        self.label = label
        self._stamp: tuple[int, int] | None = None
        self.data = b""

    def load(self) -> bytes:
        try:
            st = self.path.stat()
            data = self.path.read_bytes().strip()
        except OSError as err:
            raise CredentialFileError(
                f"vlan {self.label}: cannot read credential {self.path}: {err.strerror}"
            ) from err
        try:
            authority.parse(data)
        except authority.CredentialError as err:
            raise CredentialFileError(f"vlan {self.label}: credential {self.path}: {err}") from err
        self._stamp, self.data = (st.st_mtime_ns, st.st_size), data
        return data

    def changed(self) -> bytes | None:
        """The new content if the file changed since the last load, else None."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        if (st.st_mtime_ns, st.st_size) == self._stamp:
            return None
        try:
            return self.load()
        except CredentialFileError as err:
            log.warning("%s", err)
            self._stamp = (st.st_mtime_ns, st.st_size)
            return None


class Mvlan:
    def __init__(
        self,
        *,
        identity: Identity,
        counters: Counters,
        hop_limit: int,
        relay: bool,
        acl: Acl,
        limits: LimitsConfig,
        peers: Callable[[], Iterable[str]],
        send: Send,
        wall_us: Callable[[], int] = stamps.now_us,
    ) -> None:
        self.identity = identity
        self.counters = counters
        self.hop_limit = hop_limit
        self.relay = relay
        self.acl = acl
        self._peers = peers
        self._send = send
        self._wall_us = wall_us
        self._stamps = stamps.Stamper(wall_us)
        self._skew_us = int(limits.clock_skew_s * stamps.US)
        self.seen = StampGuard()
        self._trunks = KeyedBuckets(
            rate=limits.control_per_trunk_per_s,
            burst=2 * limits.control_per_trunk_per_s,
            max_keys=4096,
        )
        self._signers = KeyedBuckets(
            rate=limits.control_per_origin_per_s, burst=3 * limits.control_per_origin_per_s
        )
        self.vlans: dict[bytes, PrivateVlan] = {}
        # Lists given to this node for VLANs it only relays (relay.revocations).
        self.revocations = RevocationSpreader(counters=counters)
        # A relay answers a joiner's HELLO with the group HELLOs it flooded recently; the
        # joiner takes them only within its clock skew window.
        self._hello_cache = HelloCache(max_age_s=limits.clock_skew_s / 2)
        self._known_peers: set[str] = set()
        self.routes = Routes()

    def add_vlan(
        self,
        vlan: VlanConfig,
        *,
        vlan_id: bytes,
        base_dir: Path,
        on_epoch: Callable[[], None],
        mac: bytes | None = None,
        on_mac: Callable[[bytes], None] = lambda mac: None,
    ) -> MlsKeyProvider:
        """Set up a private VLAN; returns the key provider its port must use.

        With `mac` (this node's MAC on the VLAN) the member probes it for collisions and
        calls `on_mac` with a new one after re-rolling (only if the MAC is not configured)."""
        assert vlan.credential is not None
        path = Path(vlan.credential)
        if not path.is_absolute():
            path = base_dir / path
        cred_file = CredentialFile(path, label=vlan.label)
        credential = cred_file.load()
        keys = MlsKeyProvider(
            vlan_id=vlan_id,
            grace_s=vlan.epoch_grace_s,
            pairing=Pairing(self.identity.seed, self.identity.public_bytes),
        )
        creator = bytes.fromhex(vlan.creator)
        revocations = RevocationBook(
            authority=creator,
            label=vlan.label,
            counters=self.counters,
            resend_s=vlan.member_timeout_s,
            source=None
            if vlan.revocations is None
            else RevocationFile(base_dir / vlan.revocations, authority=creator, label=vlan.label),
        )
        self.vlans[vlan_id] = PrivateVlan(
            vlan_id=vlan_id,
            creator=bytes.fromhex(vlan.creator),
            node=self.identity,
            credential=credential,
            settings=PrivateSettings(
                rekey_interval_s=vlan.rekey_interval_s,
                member_timeout_s=vlan.member_timeout_s,
                epoch_grace_s=vlan.epoch_grace_s,
            ),
            keys=keys,
            emit=self.emit,
            connected=lambda: any(True for _ in self._peers()),
            on_epoch=on_epoch,
            counters=self.counters,
            reload=cred_file.changed,
            revocations=revocations,
            wall=lambda: dt.datetime.now(dt.UTC),
            mac=None
            if mac is None
            else MacClaim(
                public=self.identity.public_bytes,
                vlan_id=vlan_id,
                mac=mac,
                derived=not vlan.interface.mac,
                on_change=on_mac,
            ),
        )
        return keys

    def start(self, nursery: trio.Nursery) -> None:
        for vid, pv in self.vlans.items():
            nursery.start_soon(self._run, vid, pv)
        if self.revocations.books:
            nursery.start_soon(self.revocations.run, self.emit, m.REVOCATION)
        if self.vlans or self.relay:
            self._known_peers = set(self._peers())  # the first HELLO reaches these anyway
            nursery.start_soon(self._watch_peers)

    async def _watch_peers(self) -> None:
        """When a trunk comes up, every private VLAN says HELLO at once, and a relay passes
        on the group HELLOs it heard recently: whoever is behind the trunk (a joiner, or
        the other side of a healed partition) learns of the groups on this side now."""
        while True:
            peers = set(self._peers())
            new = peers - self._known_peers
            if new:
                for pv in self.vlans.values():
                    pv.hello_now()
                cached = self._hello_cache.fresh() if self.relay else []
                for peer in new:
                    if cached and self._send(peer, cached):
                        self.counters.inc("mvlan_hellos_passed_on", len(cached))
            self._known_peers = peers
            await trio.sleep(PEER_WATCH_S)

    async def _run(self, vid: bytes, pv: PrivateVlan) -> None:
        log.debug("task peertap-mvlan-%s started", vid.hex())
        try:
            await pv.run()
        finally:
            log.debug("task peertap-mvlan-%s stopped", vid.hex())

    async def emit(self, vlan_id: bytes, messages: Sequence[tuple[int, bytes]]) -> bool:
        """Sign `messages` (kind, body) and queue them, in order and as one batch, to every
        trunk peer; True if at least one peer took them (all or none per peer)."""
        try:
            packets = [
                envelope.sign(
                    self.identity,
                    hop_limit=self.hop_limit,
                    timestamp=self._stamps.next(),
                    vlan_id=vlan_id,
                    kind=kind,
                    body=body,
                ).encode()
                for kind, body in messages
            ]
        except ValueError:
            # PrivateVlan splits what is too large into PARTs; this is a bug if it happens.
            self.counters.drop("control_too_large")
            log.exception("vlan %s: CONTROL message too large", vlan_id.hex())
            return False
        peers = list(self._peers())
        batches: dict[str, list[bytes]] = {p: [] for p in peers}
        for (kind, body), packet in zip(messages, packets, strict=True):
            for p in self._next_hops(kind, body, peers, came_from=None):
                batches[p].append(packet)
        sent = False
        for peer, batch in batches.items():
            if batch and self._send(peer, batch):
                self.counters.inc("control_tx", len(batch))
                sent = True
        return sent

    def _next_hops(
        self, kind: int, body: bytes, peers: list[str], *, came_from: str | None
    ) -> list[str]:
        hops, routed = self.routes.next_hops(kind, body, peers, came_from=came_from)
        if kind == m.DIRECTED:
            self.counters.inc("control_directed_routed" if routed else "control_directed_flooded")
        return hops

    def on_control(self, peer: str, packet: bytes, floods: dict[str, list[bytes]]) -> None:
        """One CONTROL packet from neighbour `peer`; what to flood on goes into `floods`."""
        if not self._trunks.take(peer):
            self.counters.drop("control_rate_trunk")
            return
        msg = wire.decode_control(packet)
        if msg.signer == self.identity.public_bytes:
            return
        now = self._wall_us()
        late = in_window(msg.timestamp, now=now, max_age_us=0, skew_us=self._skew_us)
        if late is not None:
            self.counters.drop(f"control_{late}")
            return
        if not envelope.verify(msg):
            self.counters.drop("control_signature")
            return
        if not self._signers.take(msg.signer):
            self.counters.drop("control_rate_origin")
            return
        if not self.seen.first_time(msg.signer, msg.timestamp, now=now):
            self.counters.drop("control_duplicate")
            return
        self.counters.inc("control_rx")
        self.routes.learned(msg.signer, peer)
        pv = self.vlans.get(msg.vlan_id)
        if pv is not None:
            pv.on_control(msg)
        elif msg.kind == m.REVOCATION:
            self.revocations.offer(msg.vlan_id, msg.body)
        if not self.relay or not self.acl.allows(msg.vlan_id):
            return
        if msg.kind == m.HELLO:
            answers = self._hello_cache.heard(peer, msg, bytes(packet))
            if answers:
                self.counters.inc("mvlan_hello_answers", len(answers))
                floods.setdefault(peer, []).extend(answers)
        if msg.hop_limit <= 1:
            return
        onward = wire.with_hop_limit(packet, msg.hop_limit - 1)
        for p in self._next_hops(msg.kind, msg.body, list(self._peers()), came_from=peer):
            floods.setdefault(p, []).append(onward)

    def status(self, vlan_id: bytes) -> dict[str, Any]:
        pv = self.vlans.get(vlan_id)
        return {} if pv is None else pv.status()
