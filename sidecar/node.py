"""The node: wires TAP ports, switch, crypto and trunk together and runs them.

Packet paths:
  TAP -> port.outgoing (seal) -> next hops by VFT -> trunk.send (batched per peer)
  trunk records -> DATA: dedup -> deliver to own port if it wants the VFT
                                -> forward to next hops (relay, ACL, hop limit)
               -> ANNOUNCE: learn routes -> flood on once (relay)
               -> CONTROL: management VLAN (mvlan_node.py): private VLAN groups, flood (relay)
Long-lived tasks are named `peertap-<job>` and log their start and stop.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from . import __version__, identity, ids, wire
from .api import ApiServer, StatusBoard
from .config import NodeConfig
from .counters import Counters
from .crypto.keys import KeyProvider, OpenKeyProvider
from .mvlan_macprobe import set_link_mac
from .mvlan_node import Mvlan
from .port import PortInfo, VlanPort
from .switch.acl import Acl
from .switch.dedup import Dedup
from .switch.routes import RouteTable
from .tap.device import TapDevice, TapSettings
from .tap.emulated import EmulatedTap
from .trace import Trace
from .trunk.base import TrunkSettings
from .trunk.libp2p_trunk import Trunk

log = logging.getLogger("peertap.node")

TAP_BATCH = 64
STATUS_INTERVAL_S = 0.5


@dataclass(frozen=True)
class RunOptions:
    config: NodeConfig
    base_dir: Path
    trace_path: str | None = None


class Node:
    def __init__(self, options: RunOptions) -> None:
        cfg = options.config
        self.config = cfg
        key_path = Path(cfg.identity.key_file)
        if not key_path.is_absolute():
            key_path = options.base_dir / key_path
        self.identity = identity.load(key_path)
        self.counters = Counters()
        self.routes = RouteTable(ttl_s=cfg.routing.route_ttl_s)
        self.dedup = Dedup()
        self.origin = os.urandom(16)
        self.sequence = 0
        self.relay = cfg.relay.enabled
        self.board = StatusBoard()
        self.trace = Trace(options.trace_path) if options.trace_path else None
        self.ports: dict[bytes, VlanPort] = {}
        self.taps: list[TapDevice | EmulatedTap] = []
        self._emulated: list[tuple[EmulatedTap, VlanPort]] = []
        self._announce_now = trio.Event()
        self._ready = False
        self._nursery: trio.Nursery | None = None
        member_ids = [ids.vlan_id(bytes.fromhex(v.creator), v.label) for v in cfg.vlans]
        self.acl = Acl(
            mode=cfg.relay.acl.mode,
            members=member_ids,
            allow=cfg.relay.acl.allow,
            deny=cfg.relay.acl.deny,
        )
        self.trunk = Trunk(
            TrunkSettings(
                seed=self.identity.seed,
                listen=list(cfg.listen),
                bootstrap=list(cfg.bootstrap),
                security=cfg.trunk.security,
                reconnect_min_s=cfg.trunk.reconnect_min_s,
                reconnect_max_s=cfg.trunk.reconnect_max_s,
                queue_bytes=cfg.trunk.queue_bytes,
            ),
            self,
        )
        self.api = ApiServer(self.board, cfg.api.listen) if cfg.api.listen else None
        self.base_dir = options.base_dir
        # Private VLANs (security "mls"): their groups talk over the management VLAN.
        self.mvlan = Mvlan(
            identity=self.identity,
            counters=self.counters,
            hop_limit=cfg.routing.hop_limit,
            relay=self.relay,
            peers=self.trunk.peers,
            send=self.trunk.send,
        )

    # ---- lifecycle -------------------------------------------------------------

    def _open_ports(self) -> None:
        for v in self.config.vlans:
            vid = ids.vlan_id(bytes.fromhex(v.creator), v.label)
            mac = (
                ids.mac_bytes(v.interface.mac)
                if v.interface.mac
                # A zero nonce keeps the MAC stable across restarts; a collision re-rolls it.
                else ids.member_mac(self.identity.public_bytes, vid, bytes(16))
            )
            settings = TapSettings(
                name=v.interface.name,
                mtu=v.interface.mtu,
                mac=mac,
                address=v.interface.address,
                offload=v.interface.offload,
            )
            tap = EmulatedTap(settings) if v.interface.mode == "tun" else TapDevice(settings)
            self.taps.append(tap)
            info = PortInfo(v.label, vid, v.interface.name, mac, v.security)
            keys: KeyProvider = (
                self.mvlan.add_vlan(
                    v,
                    vlan_id=vid,
                    base_dir=self.base_dir,
                    on_epoch=self._epoch_changed,
                    mac=mac,
                    on_mac=functools.partial(self._mac_changed, vid),
                )
                if v.security == "mls"
                else OpenKeyProvider(vid)
            )
            self.ports[vid] = VlanPort(
                info=info,
                sink=tap,
                keys=keys,
                hop_limit=self.config.routing.hop_limit,
                counters=self.counters,
            )
            if isinstance(tap, EmulatedTap):
                self._emulated.append((tap, self.ports[vid]))
            log.info(
                "vlan %s (%s) on %s mac %s", v.label, vid.hex(), tap.settings.name, ids.mac_str(mac)
            )

    async def run(self) -> None:
        log.info("peertap %s node %s starting", __version__, self.identity.peer_id)
        try:
            self._open_ports()
            if self.api:
                self.api.start()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self._run_trunk)
                for tap in self.taps:
                    nursery.start_soon(self._task, f"tap-{tap.settings.name}", self._tap_loop, tap)
                nursery.start_soon(self._task, "announce", self._announce_loop)
                nursery.start_soon(self._task, "status", self._status_loop)
                self.mvlan.start(nursery)
                self._ready = True
                self._publish()
                log.info("node ready: listening on %s", ", ".join(self.trunk.listen_addrs()))
        finally:
            self._ready = False
            self.board.publish({"ready": False})
            for tap in self.taps:
                tap.close()
            if self.api:
                self.api.stop()
            if self.trace:
                self.trace.close()
            log.info("node stopped")

    async def _run_trunk(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        log.info("task peertap-trunk started")
        try:
            await self.trunk.run(task_status=task_status)
        finally:
            log.info("task peertap-trunk stopped")

    async def _task(self, name: str, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        log.debug("task peertap-%s started", name)
        try:
            await fn(*args)
        finally:
            log.debug("task peertap-%s stopped", name)

    # ---- TAP -> mesh -------------------------------------------------------------

    async def _tap_loop(self, tap: TapDevice | EmulatedTap) -> None:
        port = next(p for p in self.ports.values() if p.info.interface == tap.settings.name)
        while True:
            await trio.lowlevel.wait_readable(tap.fd)
            units = tap.read_batch(TAP_BATCH)
            if not units:
                continue
            batches: dict[str, list[bytes]] = {}
            self._route_out(port, units, batches)
            await self._send_batches(batches, "tx")

    def _route_out(
        self, port: VlanPort, units: list[bytes], batches: dict[str, list[bytes]]
    ) -> None:
        """Seal units of a port and sort the packets by next hop into `batches`."""
        sealed, changed = port.outgoing(units, reachable=self.routes.wanted)
        if changed:
            self._announce_now.set()
        for token, packet in sealed:
            hops = self.routes.next_hops(port.vlan_id, token)
            if not hops:
                self.counters.drop("no_route")
                continue
            for peer in hops:
                batches.setdefault(peer, []).append(packet)

    async def _send_batches(self, batches: dict[str, list[bytes]], direction: str) -> None:
        for peer, packets in batches.items():
            if self.trace:
                for p in packets:
                    self.trace.record(direction, peer, p)
            if await self.trunk.send(peer, packets):
                self.counters.inc(f"{direction}_packets", len(packets))
            else:
                self.counters.drop("peer_gone", len(packets))

    # ---- trunk events --------------------------------------------------------------

    async def peer_up(self, peer: str) -> None:
        self.counters.inc("peer_up")
        self._publish()
        # The trunk makes the peer sendable only after this returns: greet it from a task.
        if self._nursery is not None:
            self._nursery.start_soon(self._greet, peer)

    async def _greet(self, peer: str) -> None:
        """Tell a new neighbour what we want and, as a relay, everything we know."""
        packets = [self._own_announce().encode()]
        if self.relay:
            packets.extend(self._flooded(a).encode() for a in self.routes.replay_for(peer))
        if await self.trunk.send(peer, packets):
            self.counters.inc("announce_tx", len(packets))

    async def peer_down(self, peer: str) -> None:
        self.counters.inc("peer_down")
        self.routes.drop_peer(peer)
        self._publish()

    async def records(self, peer: str, records: list[bytes]) -> None:
        forwards: dict[str, list[bytes]] = {}
        floods: dict[str, list[bytes]] = {}
        for packet in records:
            if self.trace:
                self.trace.record("rx", peer, packet)
            try:
                ptype = wire.packet_type(packet)
                if ptype == wire.TYPE_DATA:
                    self._on_data(peer, packet, forwards)
                elif ptype == wire.TYPE_CONTROL:
                    self.mvlan.on_control(peer, packet, floods)
                else:
                    self._on_announce(peer, packet, floods)
            except wire.MalformedPacket as err:
                self.counters.drop(f"malformed_{err.reason}")
            except Exception:
                # A packet that trips an unexpected error must not take the node down
                # (and with it every other member's traffic): count it, log it, go on.
                self.counters.drop("internal_error")
                if self.counters.drops["internal_error"] <= 10:
                    log.exception("internal error handling a packet from %s", peer)
        replies: dict[str, list[bytes]] = {}
        for tap, port in self._emulated:
            if tap.outbox:
                # ARP/NDP answers and released packets of TUN members go out as sent.
                self._route_out(port, tap.take_outbox(), replies)
        if replies:
            await self._send_batches(replies, "tx")
        # Floods first: a COMMIT must reach members before frames under its new key.
        if floods:
            await self._send_batches(floods, "flood")
        if forwards:
            await self._send_batches(forwards, "fwd")

    def _on_data(self, peer: str, packet: bytes, forwards: dict[str, list[bytes]]) -> None:
        header = wire.decode_data(packet)
        self.counters.inc("rx_packets")
        # Sender id and counter sit side by side in the header: one slice is the key.
        if not self.dedup.first_time(packet[wire.SENDER_OFFSET : wire.DATA_HEADER_LEN]):
            self.counters.drop("duplicate")
            return
        port = self.ports.get(header.vlan_id)
        if port is not None and header.vft in port.wanted:
            port.deliver(packet, header)
        if not self.relay:
            if port is None:
                self.counters.drop("not_member")
            return
        if not self.acl.allows(header.vlan_id):
            self.counters.drop("acl")
            return
        hops = [p for p in self.routes.next_hops(header.vlan_id, header.vft) if p != peer]
        if not hops:
            return
        if header.hop_limit <= 1:
            self.counters.drop("hop_limit")
            return
        out = wire.with_hop_limit(packet, header.hop_limit - 1)
        for p in hops:
            forwards.setdefault(p, []).append(out)

    def _on_announce(self, peer: str, packet: bytes, floods: dict[str, list[bytes]]) -> None:
        ann = wire.decode_announce(packet)
        self.counters.inc("announce_rx")
        if ann.origin == self.origin:
            return
        # Non-relays keep routes only for their own VLANs; relays per their ACL.
        accept = self.acl.allows if self.relay else self.ports.__contains__
        learned = self.routes.learn(peer, ann, accept_vlan=accept)
        if learned.refused:
            self.counters.drop("route_table_full")
            return
        if not (learned.fresh and self.relay) or ann.hop_limit <= 1:
            return
        onward = self._flooded(ann).encode()
        for p in self.trunk.peers():
            if p != peer:
                floods.setdefault(p, []).append(onward)

    def _flooded(self, ann: wire.Announce) -> wire.Announce:
        """The announcement as this relay passes it on: one hop further, ACL-filtered."""
        return wire.Announce(
            hop_limit=ann.hop_limit - 1,
            origin=ann.origin,
            sequence=ann.sequence,
            distance=min(ann.distance + 1, 255),
            entries=tuple((v, t) for v, t in ann.entries if self.acl.allows(v)),
        )

    def _mac_changed(self, vid: bytes, mac: bytes) -> None:
        """A private VLAN re-rolled our MAC after a collision probe: TAP, port, routes."""
        port = self.ports[vid]
        tap = next(t for t in self.taps if t.settings.name == port.info.interface)
        if isinstance(tap, EmulatedTap):
            tap.emulator.mac = mac
        else:
            set_link_mac(tap.settings.name, mac)
        port.set_mac(mac)
        self._announce_now.set()
        self._publish()

    def _epoch_changed(self) -> None:
        """A private VLAN changed key epoch: its VFT salt moved; re-announce at once."""
        for port in self.ports.values():
            port.refresh_tokens()
        self._announce_now.set()
        # /status shows the epoch whose keys the node uses now, not one up to 0.5 s old.
        self._publish()

    # ---- announcements ---------------------------------------------------------------

    def _own_announce(self) -> wire.Announce:
        entries = tuple(
            (vid, token) for vid, port in self.ports.items() for token in sorted(port.wanted)
        )
        return wire.Announce(
            hop_limit=self.config.routing.hop_limit,
            origin=self.origin,
            sequence=self.sequence,
            distance=0,
            entries=entries[: wire.MAX_ANNOUNCE_ENTRIES],
        )

    async def _announce_loop(self) -> None:
        interval = self.config.routing.announce_interval_s
        while True:
            with trio.move_on_after(interval):
                await self._announce_now.wait()
            self._announce_now = trio.Event()
            for port in self.ports.values():
                if port.local.expire():
                    port.refresh_wanted()
            self.routes.expire()
            self.sequence += 1
            packet = self._own_announce().encode()
            for peer in self.trunk.peers():
                await self.trunk.send(peer, [packet])
            self.counters.inc("announce_tx")

    # ---- status ------------------------------------------------------------------------

    async def _status_loop(self) -> None:
        while True:
            self._publish()
            await trio.sleep(STATUS_INTERVAL_S)

    def _publish(self) -> None:
        self.board.publish(self.status())

    def status(self) -> dict[str, Any]:
        vlans = []
        for vid, port in self.ports.items():
            epoch = port.keys.current()
            tap = next(t for t in self.taps if t.settings.name == port.info.interface)
            vlans.append(
                {
                    "label": port.info.label,
                    "vlan_id": vid.hex(),
                    "interface": port.info.interface,
                    "mac": ids.mac_str(port.info.mac),
                    "security": port.info.security,
                    "epoch": epoch.epoch,
                    "mls_id": epoch.mls_id.hex(),
                    "tap_mode": tap.mode,
                    "wanted_tokens": len(port.wanted),
                    "learned_macs": len(port.local.macs),
                    "groups": sorted(ids.mac_str(g) for g in port.local.groups),
                    **self.mvlan.status(vid),
                }
            )
        return {
            "ready": self._ready,
            "version": __version__,
            "peer_id": self.identity.peer_id,
            "listen": self.trunk.listen_addrs(),
            "peers": sorted(self.trunk.peers()),
            "relay": {"enabled": self.relay, "acl": self.acl.mode},
            "vlans": vlans,
            "routes": self.routes.sizes(),
            "counters": self.counters.snapshot(),
            "trunk": self.trunk.stats(),
            "time": time.time(),
        }
