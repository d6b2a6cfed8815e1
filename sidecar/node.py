"""The node: the composition root that wires TAP ports, forwarder, routes, admission,
management VLAN and trunk together and runs them.

Packet paths:
  TAP -> port.outgoing (seal) -> forwarder: next hops by VFT -> trunk.send (never waits)
  trunk stream opens -> INTRO: admission decides before anything else is read
  trunk records -> DATA: forwarder (deliver to own port, relay onward)
               -> ANNOUNCE: announcements.AnnounceIntake (verify once) -> routes
                            -> relays flood it on once
               -> CONTROL: management VLAN (mvlan_node.py): private VLAN groups, flood (relay)
               -> INTRO: a renewed credential of an admitted peer
               -> PROBE: path measurement (switch/probes.py) -> path ranks -> routes
Long-lived tasks are named `peertap-<job>` and log their start and stop.
With api.vlan_control the API thread joins and leaves VLANs through `vlan_bridge`
(vlan_control.py), which runs `join_vlan`/`leave_vlan` on the trio loop.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from . import __version__, identity, ids, vlan_control, wire
from .admission import Admission
from .admission.files import OwnCredentials
from .admission.gate import AdmissionGate
from .admission.policy import pinned_peer_ids
from .announcements import AnnounceIntake, IntakeLimits, OwnAnnouncer
from .api import ApiServer, StatusBoard
from .config import ConfigError, NodeConfig, VlanConfig
from .config_watch import ConfigWatch
from .counters import Counters
from .crypto.keys import KeyProvider, PublicKeyProvider
from .crypto.psk_keys import PskFileError, PskKeyProvider
from .datagram.udp import port_for
from .fastpath import FastPath
from .fastpath import enabled as fast_path_enabled
from .forwarding import Batches, Forwarder
from .port import PortInfo, VlanPort
from .private.macprobe import set_link_mac
from .private.mvlan import Mvlan
from .switch.acl import Acl
from .switch.probes import PathMonitor
from .switch.routes import RouteTable
from .switch.scores import PathScores
from .tap.device import TapDevice, TapSettings
from .tap.emulated import EmulatedTap
from .trace import Trace
from .trunk.base import TrunkConfigError, TrunkSettings
from .trunk.libp2p_trunk import Trunk

log = logging.getLogger("peertap.node")

TAP_BATCH = 64
STATUS_INTERVAL_S = 0.5
HOUSEKEEPING_S = 1.0
ROOM_WAIT_S = 0.05
MAX_STATUS_ORIGINS = 1000
_PROBE_TYPE = bytes([wire.TYPE_PROBE])

READABLE_BY = {
    "public": "anyone who knows the VLAN's creator key and label",
    "psk": "holders of the pre-shared secret",
    "mls": "current members of the VLAN's MLS group",
}


@dataclass(frozen=True)
class RunOptions:
    config: NodeConfig
    base_dir: Path
    trace_path: str | None = None
    config_path: Path | None = None  # followed while running (config_watch.py)


class Node:
    def __init__(self, options: RunOptions) -> None:
        cfg = options.config
        self.config = cfg
        self.base_dir = options.base_dir
        self.identity = identity.load(self._path(cfg.identity.key_file))
        self.counters = Counters()
        self.routes = RouteTable(ttl_s=cfg.routing.route_ttl_s)
        self.relay = cfg.relay.enabled
        self.board = StatusBoard()
        self.trace = Trace(options.trace_path) if options.trace_path else None
        self.ports: dict[bytes, VlanPort] = {}
        self.taps: list[TapDevice | EmulatedTap] = []
        self._emulated: list[tuple[EmulatedTap, VlanPort]] = []
        # Per TAP task: its cancel scope and an event set once it has stopped.
        self._tap_tasks: dict[str, tuple[trio.CancelScope, trio.Event]] = {}
        self._vlan_lock = trio.Lock()  # one join or leave at a time
        self._psk: list[tuple[str, PskKeyProvider]] = []
        self._announce_now = trio.Event()
        self._ready = False
        self._nursery: trio.Nursery | None = None
        self._peer_ids: dict[bytes, str] = {}
        member_ids = [ids.vlan_id(bytes.fromhex(v.creator), v.label) for v in cfg.vlans]
        self._configured = list(zip(cfg.vlans, member_ids, strict=True))
        self.acl = Acl(
            mode=cfg.relay.acl.mode,
            members=member_ids,
            allow=cfg.relay.acl.allow,
            deny=cfg.relay.acl.deny,
        )
        self.credentials = OwnCredentials([self._path(p) for p in cfg.admission.credentials])
        self.gate = AdmissionGate(
            policy=Admission(
                mode=cfg.admission_mode,
                peers=cfg.admission.peers,
                authorities=[bytes.fromhex(k) for k in cfg.admission.authorities],
                pinned=pinned_peer_ids(cfg.bootstrap),
                skew_s=cfg.limits.clock_skew_s,
            ),
            credentials=self.credentials,
            relay=self.relay,
            counters=self.counters,
            datagram=cfg.trunk.datagram,
        )
        self._config_watch = (
            ConfigWatch(options.config_path, cfg) if options.config_path is not None else None
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
                stall_timeout_s=cfg.trunk.stall_timeout_s,
                datagram_port=(
                    port_for(cfg.listen, cfg.trunk.datagram_port) if cfg.trunk.datagram else None
                ),
            ),
            self,
        )
        # Established datagram paths run on a thread outside trio (fastpath/). Without a
        # datagram path every frame would only be handed back to trio's trunk stream.
        self.fast = (
            FastPath(
                channel=self.trunk.datagram, trunk_send=self.trunk.send, counters=self.counters
            )
            if fast_path_enabled() and self.trunk.datagram is not None
            else None
        )
        # Path scores: every trunk's path measured (its datagram path's own probes while
        # up, else PROBEs on the stream) ranks neighbours; routes prefer the best.
        self.paths = PathMonitor(
            scores=PathScores(),
            peers=self.trunk.peers,
            send=self.trunk.send,
            load=self.trunk.peer_stats,
            queue_limit=cfg.trunk.queue_bytes,
            on_change=self.routes.rescore,
            counters=self.counters,
            interval_s=cfg.routing.probe_interval_s,
            paths=self.trunk.path_stats,
        )
        self.routes.rank = self.paths.rank
        # VLAN selection from the web UI (api.vlan_control): the API thread reaches the
        # trio loop only through this bridge (see the "VLAN selection" section below).
        self.vlan_bridge = vlan_control.ThreadBridge(join=self.join_vlan, leave=self.leave_vlan)
        control = self.vlan_bridge if cfg.api.vlan_control else None
        self.api = (
            ApiServer(self.board, cfg.api.listen, control=control) if cfg.api.listen else None
        )
        self.announcer = OwnAnnouncer(self.identity, hop_limit=cfg.routing.hop_limit)
        self.intake = AnnounceIntake(
            routes=self.routes,
            own_key=self.identity.public_bytes,
            limits=IntakeLimits(
                max_age_s=cfg.routing.route_ttl_s,
                skew_s=cfg.limits.clock_skew_s,
                per_trunk_per_s=cfg.limits.announce_per_trunk_per_s,
                per_origin_per_s=cfg.limits.announce_per_origin_per_s,
            ),
            counters=self.counters,
        )
        self.forwarder = Forwarder(
            ports=self.ports,
            routes=self.routes,
            acl=self.acl,
            relay=self.relay,
            counters=self.counters,
            send=self.fast.send if self.fast is not None else self.trunk.send,
            trace=self.trace,
        )
        # Private VLANs (security "mls"): their groups talk over the management VLAN.
        self.mvlan = Mvlan(
            identity=self.identity,
            counters=self.counters,
            hop_limit=cfg.routing.hop_limit,
            relay=self.relay,
            acl=self.acl,
            limits=cfg.limits,
            peers=self.trunk.peers,
            send=self.trunk.send,
        )
        for r in cfg.relay.revocations:
            self.mvlan.revocations.add(
                creator=bytes.fromhex(r.creator),
                label=r.label,
                path=self._path(r.file),
                resend_s=VlanConfig.model_fields["member_timeout_s"].default,
            )

    def _path(self, name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else self.base_dir / p

    # ---- lifecycle -------------------------------------------------------------

    def _keys_for(self, v: VlanConfig, vid: bytes, mac: bytes) -> KeyProvider:
        if v.security == "mls":
            return self.mvlan.add_vlan(
                v,
                vlan_id=vid,
                base_dir=self.base_dir,
                on_epoch=self._epoch_changed,
                mac=mac,
                on_mac=functools.partial(self._mac_changed, vid),
            )
        if v.security == "psk":
            assert v.psk_file is not None
            try:
                psk = PskKeyProvider(
                    vlan_id=vid, path=self._path(v.psk_file), grace_s=v.epoch_grace_s
                )
            except PskFileError as err:
                raise OSError(f"vlan {v.label}: {err}") from err
            self._psk.append((v.label, psk))
            return psk
        log.warning(
            "vlan %s is public: %s can read it (use psk or mls to keep it private)",
            v.label,
            READABLE_BY["public"],
        )
        return PublicKeyProvider(bytes.fromhex(v.creator), v.label)

    def _open_ports(self) -> None:
        for v, vid in self._configured:
            if v.start == "joined":
                self._open_vlan(v, vid)

    def _open_vlan(self, v: VlanConfig, vid: bytes) -> TapDevice | EmulatedTap:
        """Keys, TAP and port of one VLAN (not yet read: see `_start_tap`)."""
        mac = (
            ids.mac_bytes(v.interface.mac)
            if v.interface.mac
            # A zero nonce keeps the MAC stable across restarts; a collision re-rolls it.
            else ids.member_mac(self.identity.public_bytes, vid, bytes(16))
        )
        keys = self._keys_for(v, vid, mac)
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
            "vlan %s (%s, %s) on %s mac %s",
            v.label,
            vid.hex(),
            v.security,
            tap.settings.name,
            ids.mac_str(mac),
        )
        return tap

    async def run(self) -> None:
        log.info("peertap %s node %s starting", __version__, self.identity.peer_id)
        try:
            self.credentials.load()
            self._open_ports()
            if self.api:
                self.api.start()
            log.info("admission: %s", self.config.admission_mode)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self._run_trunk)
                if self.fast is not None:
                    self.fast.start(self._records_now)
                for tap in self.taps:
                    self._start_tap(tap)
                nursery.start_soon(self._task, "announce", self._announce_loop)
                nursery.start_soon(self._task, "status", self._status_loop)
                nursery.start_soon(self._task, "housekeeping", self._housekeeping_loop)
                nursery.start_soon(self._task, "paths", self.paths.run)
                self.mvlan.start(nursery)
                # Join and leave from the API only once every TAP task is started (until
                # then the bridge answers 503).
                self.vlan_bridge.token = trio.lowlevel.current_trio_token()
                self._ready = True
                self._publish()
                log.info("node ready: listening on %s", ", ".join(self.trunk.listen_addrs()))
        finally:
            if self.fast is not None:
                with trio.CancelScope(shield=True):
                    await self.fast.stop()
            self._ready = False
            self.vlan_bridge.token = None
            self._nursery = None
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

    def _start_tap(self, tap: TapDevice | EmulatedTap) -> None:
        """Read `tap` in a task of the node's nursery that `_stop_tap` can cancel."""
        assert self._nursery is not None
        scope, stopped = trio.CancelScope(), trio.Event()
        self._tap_tasks[tap.settings.name] = (scope, stopped)
        self._nursery.start_soon(
            self._task, f"tap-{tap.settings.name}", self._scoped_tap_loop, tap, scope, stopped
        )

    async def _stop_tap(self, tap: TapDevice | EmulatedTap) -> None:
        """Cancel the TAP's task and wait until it stopped (then its fd may be closed)."""
        scope, stopped = self._tap_tasks.pop(tap.settings.name)
        scope.cancel()
        await stopped.wait()

    async def _scoped_tap_loop(
        self, tap: TapDevice | EmulatedTap, scope: trio.CancelScope, stopped: trio.Event
    ) -> None:
        try:
            with scope:
                if self.fast is not None and isinstance(tap, TapDevice):
                    await self._tap_thread(tap, self.fast)
                    return
                async with trio.open_nursery() as nursery:
                    if isinstance(tap, EmulatedTap):
                        nursery.start_soon(tap.follow_addresses)
                    await self._tap_loop(tap)
        finally:
            stopped.set()

    async def _tap_thread(self, tap: TapDevice, fast: FastPath) -> None:
        """Read `tap` on the fast-path thread until cancelled."""
        port = next(p for p in self.ports.values() if p.info.interface == tap.settings.name)

        def work() -> Callable[[], None] | None:
            units = tap.read_batch(TAP_BATCH)
            if not units:
                return None
            batches: Batches = {}
            if self.forwarder.route_out(port, units, batches):
                fast.call_soon(lambda: self._announce_now.set())
            later = self.forwarder.send_now(batches, "tx", fast.send_datagrams)
            if not later:
                return None
            return functools.partial(fast.run_in_loop, self._send_own, later)

        fast.add_tap(tap.settings.name, tap.fd, work)
        try:
            await trio.sleep_forever()
        finally:
            fast.remove_tap(tap.fd)

    async def _send_own(self, batches: Batches) -> None:
        """Our own traffic to peers without a datagram path up, on the trunk stream."""
        for peer in batches:
            await self.trunk.wait_for_room(peer, timeout=ROOM_WAIT_S)
        self.forwarder.send_batches(batches, "tx")

    async def _tap_loop(self, tap: TapDevice | EmulatedTap) -> None:
        port = next(p for p in self.ports.values() if p.info.interface == tap.settings.name)
        while True:
            await trio.lowlevel.wait_readable(tap.fd)
            units = tap.read_batch(TAP_BATCH)
            if not units:
                continue
            batches: Batches = {}
            if self.forwarder.route_out(port, units, batches):
                self._announce_now.set()
            # Our own traffic waits briefly for a busy, draining peer (never for a stalled
            # one), so local TCP flows slow down rather than lose whole bursts.
            await self._send_own(batches)

    # ---- admission (admission/gate.py decides) -----------------------------------------

    def intro(self) -> bytes:
        return self.gate.intro()

    def admit(self, peer: str, intro: bytes) -> bool:
        return self.gate.admit(peer, intro)

    def _on_intro(self, peer: str, packet: bytes) -> None:
        """An admitted peer re-introduced itself (a renewed credential)."""
        if not self.gate.admit(peer, packet):
            self.trunk.disconnect(peer)

    async def _housekeeping_loop(self) -> None:
        while True:
            await trio.sleep(HOUSEKEEPING_S)
            for peer in self.gate.expired(time.time()):
                self.trunk.disconnect(peer)
            self._follow_config()
            if self.credentials.reload():
                intro = self.gate.intro()
                for peer in self.trunk.peers():
                    self.trunk.send(peer, [intro])
            for label, psk in self._psk:
                try:
                    if psk.reload():
                        log.info("vlan %s: pre-shared secrets reloaded", label)
                        self._epoch_changed()
                except PskFileError as err:
                    self.counters.drop("psk_reload_failed")
                    log.warning("vlan %s: keeping the secrets in use: %s", label, err)

    def _follow_config(self) -> None:
        """Take a changed config file's new bootstrap list; say what needs a restart."""
        if self._config_watch is None:
            return
        try:
            change = self._config_watch.poll()
        except ConfigError as err:
            self.counters.drop("config_reload_failed")
            log.warning("config file changed but is not usable, keeping the running one: %s", err)
            return
        if change is None:
            return
        self.counters.inc("config_reloads")
        if "bootstrap" in change.live:
            bootstrap = list(change.config.bootstrap)
            try:
                added, retired = self.trunk.set_bootstrap(bootstrap)
            except TrunkConfigError as err:
                self.counters.drop("config_reload_failed")
                log.warning("new bootstrap list not usable, keeping the running one: %s", err)
                return
            self.gate.policy.pinned = pinned_peer_ids(bootstrap)
            log.info(
                "bootstrap list changed: dialing %s; no longer redialing %s",
                ", ".join(added) or "no new peer",
                ", ".join(retired) or "none",
            )
        if change.restart:
            self.counters.inc("config_restart_needed")
            log.warning(
                "config file changed %s: that takes effect at the next start",
                ", ".join(sorted(change.restart)),
            )

    # ---- trunk events --------------------------------------------------------------

    async def peer_up(self, peer: str) -> None:
        self.counters.inc("peer_up")
        if not self.gate.up(peer):  # cannot happen: the trunk admits before peer_up
            self.trunk.disconnect(peer)
            return
        self._publish()
        # The trunk makes the peer sendable only after this returns: greet it from a task.
        if self._nursery is not None:
            self._nursery.start_soon(self._greet, peer)

    async def _greet(self, peer: str) -> None:
        """Tell a new neighbour what we want and, as a relay, everything we know."""
        packets = [
            self.announcer.latest(vid, tuple(sorted(port.wanted))).encode()
            for vid, port in self.ports.items()
        ]
        if self.relay:
            packets.extend(
                _flooded(a).encode() for a in self.routes.replay_for(peer) if a.hop_limit > 1
            )
        if packets and self.trunk.send(peer, packets):
            self.counters.inc("announce_tx", len(packets))

    async def peer_down(self, peer: str) -> None:
        self.counters.inc("peer_down")
        self.gate.down(peer)
        self.intake.forget_peer(peer)
        self.paths.forget(peer)
        self.routes.drop_peer(peer)
        self._publish()

    async def records(self, peer: str, records: list[bytes]) -> None:
        self._records_now(peer, records)

    def _records_now(self, peer: str, records: list[bytes]) -> None:
        """Handle records from `peer`: on the trio loop, or on the fast-path thread
        (DATA only) with the loop lock held."""
        forwards: Batches = {}
        floods: Batches = {}
        for packet in records:
            # Probes measure paths (ten a second per trunk); they are not traffic to trace.
            if self.trace and packet[1:2] != _PROBE_TYPE:
                self.trace.record("rx", peer, packet)
            try:
                ptype = wire.packet_type(packet)
                if ptype == wire.TYPE_DATA:
                    self.forwarder.on_data(peer, packet, forwards)
                elif ptype == wire.TYPE_CONTROL:
                    self.mvlan.on_control(peer, packet, floods)
                elif ptype == wire.TYPE_ANNOUNCE:
                    self._on_announce(peer, packet, floods)
                elif ptype == wire.TYPE_PROBE:
                    self.paths.on_probe(peer, packet)
                else:
                    self._on_intro(peer, packet)
            except wire.MalformedPacket as err:
                self.counters.drop(f"malformed_{err.reason}")
            except Exception:
                # A packet that trips an unexpected error must not take the node down
                # (and with it every other member's traffic): count it, log it, go on.
                self.counters.drop("internal_error")
                if self.counters.drops["internal_error"] <= 10:
                    log.exception("internal error handling a packet from %s", peer)
        replies: Batches = {}
        for tap, port in self._emulated:
            if tap.outbox:
                # ARP/NDP answers and released packets of TUN members go out as sent.
                self.forwarder.route_out(port, tap.take_outbox(), replies)
        if replies:
            self.forwarder.send_batches(replies, "tx")
        # Floods first: a COMMIT must reach members before frames under its new key.
        if floods:
            self.forwarder.send_batches(floods, "flood")
        if forwards:
            self.forwarder.send_batches(forwards, "fwd")

    def _on_announce(self, peer: str, packet: bytes, floods: Batches) -> None:
        # Non-relays keep routes only for their own VLANs; relays per their ACL.
        accept = self.acl.allows if self.relay else self.ports.__contains__
        key = self.gate.key(peer)
        if key is None:  # not admitted (cannot happen: the trunk admits first)
            return
        taken = self.intake.take(peer, packet, peer_key=key, accept_vlan=accept)
        if taken is None:
            return
        ann, learned = taken
        if not (learned.fresh and self.relay) or ann.hop_limit <= 1:
            return
        onward = _flooded(ann).encode()
        for p in self.trunk.peers():
            if p != peer:
                floods.setdefault(p, []).append(onward)

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
        """A VLAN changed key epoch: its VFT salt moved; re-announce at once."""
        for port in self.ports.values():
            port.refresh_tokens()
        self._announce_now.set()
        # /status shows the epoch whose keys the node uses now, not one up to 0.5 s old.
        self._publish()

    # ---- VLAN selection at run time (api.vlan_control; rules in vlan_control.py) -------
    # Both run on the trio loop: the API thread reaches them through `self.vlan_bridge`.

    async def join_vlan(self, label: str) -> dict[str, Any]:
        """Open a configured public or psk VLAN that was left: keys, TAP, port, its TAP
        task, and an announcement of its tokens to every trunk peer at once."""
        async with self._vlan_lock:
            return await self._join(label)

    async def _join(self, label: str) -> dict[str, Any]:
        v, vid = vlan_control.configured(self.config.vlans, label)
        if vid in self.ports:
            raise vlan_control.VlanControlError(409, f"vlan {v.label} is already joined")
        if self._nursery is None:
            raise vlan_control.VlanControlError(503, "the node is stopping")
        psk_before = len(self._psk)
        try:
            tap = self._open_vlan(v, vid)
        except OSError as err:
            del self._psk[psk_before:]
            log.warning("vlan %s: cannot join: %s", v.label, err)
            raise vlan_control.VlanControlError(500, f"cannot join vlan {v.label}: {err}") from err
        self._start_tap(tap)
        port = self.ports[vid]
        self._send_announcements([self.announcer.make(vid, tuple(sorted(port.wanted)))])
        log.info("vlan %s joined (web UI)", v.label)
        self._publish()
        return vlan_control.result(v, vid, joined=True)

    async def leave_vlan(self, label: str) -> dict[str, Any]:
        """Close a joined public or psk VLAN: stop its TAP task, remove its interface, port
        and keys, and withdraw its routes (an announcement with no tokens)."""
        async with self._vlan_lock:
            return await self._leave(label)

    async def _leave(self, label: str) -> dict[str, Any]:
        v, vid = vlan_control.configured(self.config.vlans, label)
        port = self.ports.pop(vid, None)
        if port is None:
            raise vlan_control.VlanControlError(409, f"vlan {v.label} is already left")
        tap = next(t for t in self.taps if t.settings.name == port.info.interface)
        self.taps.remove(tap)
        self._emulated = [(t, p) for t, p in self._emulated if t is not tap]
        self._psk = [(name, k) for name, k in self._psk if k is not port.keys]
        await self._stop_tap(tap)
        tap.close()
        self._send_announcements([self.announcer.make(vid, ())])
        log.info("vlan %s left (web UI): interface %s removed", v.label, tap.settings.name)
        self._publish()
        return vlan_control.result(v, vid, joined=False)

    def _send_announcements(self, anns: list[wire.Announce]) -> None:
        packets = [a.encode() for a in anns]
        for peer in self.trunk.peers():
            if self.trunk.send(peer, packets):
                self.counters.inc("announce_tx", len(packets))

    # ---- announcements ---------------------------------------------------------------

    def _own_announcements(self) -> list[wire.Announce]:
        return [
            self.announcer.make(vid, tuple(sorted(port.wanted))) for vid, port in self.ports.items()
        ]

    async def _announce_loop(self) -> None:
        interval = self.config.routing.announce_interval_s
        while True:
            with trio.move_on_after(interval):
                await self._announce_now.wait()
            self._announce_now = trio.Event()
            for port in self.ports.values():
                # Ageing MACs and groups, and old epochs leaving their grace window.
                port.local.expire()
                port.refresh_wanted()
            self.routes.expire()
            packets = [a.encode() for a in self._own_announcements()]
            if not packets:
                continue
            for peer in self.trunk.peers():
                self.trunk.send(peer, packets)
            self.counters.inc("announce_tx")

    # ---- status ------------------------------------------------------------------------

    async def _status_loop(self) -> None:
        while True:
            self._publish()
            await trio.sleep(STATUS_INTERVAL_S)

    def _publish(self) -> None:
        self.board.publish(self.status())

    def _peer_id(self, key: bytes) -> str:
        pid = self._peer_ids.get(key)
        if pid is None:
            if len(self._peer_ids) >= 4 * MAX_STATUS_ORIGINS:
                self._peer_ids.clear()
            pid = self._peer_ids[key] = identity.peer_id_from_public(key)
        return pid

    def status(self) -> dict[str, Any]:
        vlans: list[dict[str, Any]] = []
        for v, vid in self._configured:
            port = self.ports.get(vid)
            if port is None:  # left (api.vlan_control): listed with its config only
                vlans.append(
                    {
                        "label": v.label,
                        "vlan_id": vid.hex(),
                        "interface": v.interface.name,
                        "address": v.interface.address,
                        "security": v.security,
                        "readable_by": READABLE_BY[v.security],
                        "joined": False,
                    }
                )
                continue
            epoch = port.keys.current()
            tap = next(t for t in self.taps if t.settings.name == port.info.interface)
            vlans.append(
                {
                    "label": port.info.label,
                    "vlan_id": vid.hex(),
                    "interface": port.info.interface,
                    "address": tap.settings.address,
                    "mac": ids.mac_str(port.info.mac),
                    "security": port.info.security,
                    "readable_by": READABLE_BY[port.info.security],
                    "epoch": epoch.epoch,
                    "mls_id": epoch.mls_id.hex(),
                    "tap_mode": tap.mode,
                    "tap": tap.counts(),
                    "wanted_tokens": len(port.wanted),
                    "learned_macs": len(port.local.macs),
                    "reassembly": port.reassembler.status(),
                    "groups": sorted(ids.mac_str(g) for g in port.local.groups),
                    "joined": True,
                    **self.mvlan.status(vid),
                }
            )
        origins = [
            {
                "node": self._peer_id(origin),
                "vlan_id": vid.hex(),
                "via": via,
                "distance": distance,
                "tokens": tokens,
                "paths": paths,
                # What the route table compares per path: distance + the path's rank.
                "scores": {n: d + self.paths.rank(n) for n, d in paths.items()},
            }
            for origin, vid, via, distance, tokens, paths in self.routes.origins()[
                :MAX_STATUS_ORIGINS
            ]
        ]
        return {
            "ready": self._ready,
            "version": __version__,
            "protocol": wire.VERSION,
            "peer_id": self.identity.peer_id,
            "listen": self.trunk.listen_addrs(),
            "peers": sorted(self.trunk.peers()),
            "relay": {"enabled": self.relay, "acl": self.acl.mode},
            "admission": self.gate.status(),
            # Frame keys this node holds: a pure relay holds none and can open no frame.
            "frame_keys_held": len(self.ports),
            "vlans": vlans,
            "routes": self.routes.sizes(),
            "origins": origins,
            "counters": self.counters.snapshot(),
            "trunk": self.trunk.stats(),
            "trunk_peers": self.trunk.peer_stats(),
            "transports": self.trunk.path_stats(),
            "fast_path": self.fast.status() if self.fast is not None else {"enabled": False},
            "paths": self.paths.status(),
            "time": time.time(),
        }


def _flooded(ann: wire.Announce) -> wire.Announce:
    """An announcement as a relay passes it on: one hop further (the signature stays valid)."""
    return dataclasses.replace(
        ann, hop_limit=ann.hop_limit - 1, distance=min(ann.distance + 1, 255)
    )
