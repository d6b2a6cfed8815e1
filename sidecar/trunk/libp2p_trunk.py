"""Trunk on py-libp2p: one long-lived `/peertap/trunk/2.0.0` stream per peer.

Each stream first goes through the introduction (base.TrunkEvents): the node layer
admits the peer on its INTRO record or the stream is reset and the connection
closed. An admitted trunk ("link") runs a writer task that drains the peer's whole
send queue into one stream write and a reader that splits large reads into records
and hands each read's records to the node layer in one awaited call. Sending never
waits: a full queue drops, and a peer that accepts nothing for the stall deadline
is disconnected. Bootstrap
peers are dialed forever with jittered exponential backoff; peers that dial in
are trunks too. When two streams to one peer are alive, the tie-break in
`_register` decides which one stays (see docs/protocol.md, section 8).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from multiaddr import Multiaddr

from .. import wire
from ..datagram import DatagramChannel, is_path_record
from .backoff import Backoff
from .base import (
    INTRO_TIMEOUT_S,
    PROTOCOL_ID,
    SIMULTANEOUS_OPEN_WINDOW_S,
    TrunkConfigError,
    TrunkError,
    TrunkEvents,
    TrunkSettings,
)
from .host import (
    TrunkStalled,
    build_host,
    key_pair_from_seed,
    peer_id_of,
    quiet_libp2p_logging,
    raise_receive_window,
    window_violations,
    write_within_window,
)
from .records import RecordSplitter, check_record
from .records import encode as record_frame
from .sendqueue import SendQueue, SendQueueClosed

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20
"""Bytes asked for per stream read; Yamux returns what is buffered, up to this."""
DIAL_TIMEOUT_S = 15.0
RESET_TIMEOUT_S = 2.0
MOVING_S = 0.25
"""A peer whose writer completed a write this recently is draining its queue."""
RECEIVE_WINDOW = int(os.environ.get("PEERTAP_TRUNK_WINDOW", 8 * 1024 * 1024))
"""Yamux receive window granted on each trunk stream (see host.raise_receive_window)."""

_STREAM_PROTOCOL = TProtocol(PROTOCOL_ID)


class TrunkNotRunningError(TrunkError):
    """The trunk's libp2p host exists only while `Trunk.run` runs."""


@dataclass(eq=False)
class _Link:
    """One trunk stream to one peer, from registration to teardown."""

    peer: str
    opener: str
    stream: INetStream
    started: float = field(default_factory=trio.current_time)
    queue: SendQueue | None = None
    broken: bool = False
    delivering: bool = False
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    writer_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    finished: trio.Event = field(default_factory=trio.Event)
    splitter: RecordSplitter = field(default_factory=RecordSplitter)
    progress: float = field(default_factory=trio.current_time)  # last write completed
    pending: list[bytes] = field(default_factory=list)  # records that came with the INTRO
    datagram: bool = False  # both INTROs offer the datagram path
    stats: _PeerStats = field(default_factory=lambda: _PeerStats())


@dataclass
class _PeerStats:
    records_sent: int = 0
    bytes_sent: int = 0
    records_received: int = 0
    bytes_received: int = 0
    drops: int = 0


@dataclass
class _Counters:
    records_sent: int = 0
    bytes_sent: int = 0
    writes: int = 0
    records_received: int = 0
    bytes_received: int = 0
    reads: int = 0
    drops: int = 0
    protocol_errors: int = 0
    reconnects: int = 0
    trunks_up: int = 0
    trunks_down: int = 0
    streams_replaced: int = 0
    streams_refused: int = 0
    dial_failures: int = 0
    link_errors: int = 0
    admission_refused: int = 0
    intro_timeouts: int = 0
    intro_failures: int = 0
    queue_full: int = 0
    stalls: int = 0


def _peer_bytes(peer: str) -> bytes:
    return bytes(ID.from_base58(peer).to_bytes())


def _offers_datagram(intro: bytes) -> bool:
    try:
        return bool(wire.decode_intro(intro).roles & wire.ROLE_DATAGRAM)
    except wire.MalformedPacket:
        return False


def _address_of(info: PeerInfo) -> str:
    """A bootstrap entry as one string: its address(es) and peer id."""
    return " ".join(str(a) for a in info.addrs) + f"/p2p/{info.peer_id}"


def _parse_bootstrap(addr: str) -> PeerInfo:
    try:
        return info_from_p2p_addr(Multiaddr(addr))
    except Exception as err:  # multiaddr and libp2p raise several unrelated types here
        raise TrunkConfigError(
            f"bootstrap address {addr!r} is not a /.../p2p/<id> multiaddr"
        ) from err


def _parse_listen(addr: str) -> Multiaddr:
    try:
        return Multiaddr(addr)
    except Exception as err:
        raise TrunkConfigError(f"listen address {addr!r} is not a multiaddr") from err


class Trunk:
    """Encrypted libp2p trunks to peers, carrying length-framed PeerTap records."""

    def __init__(self, settings: TrunkSettings, events: TrunkEvents) -> None:
        self._settings = settings
        self._events = events
        self._key_pair = key_pair_from_seed(settings.seed)
        self.peer_id: str = peer_id_of(self._key_pair)
        self._peer_id_bytes = _peer_bytes(self.peer_id)
        self._listen = [_parse_listen(a) for a in settings.listen]
        self._bootstrap = [_parse_bootstrap(a) for a in settings.bootstrap]
        # Bootstrap addresses being dialed (each with an event set when it leaves the
        # list): set_bootstrap() adds and retires them while running.
        self._dialers: dict[str, tuple[PeerInfo, trio.Event]] = {}
        self._nursery: trio.Nursery | None = None
        self._host: IHost | None = None
        self._links: dict[str, _Link] = {}
        self._up: set[str] = set()
        self._locks: dict[str, trio.Lock] = {}
        self._counters = _Counters()
        self._datagram = (
            DatagramChannel(
                own_id=self._peer_id_bytes,
                host=settings.datagram_host,
                port=settings.datagram_port,
            )
            if settings.datagram_port is not None
            else None
        )
        if self._datagram is not None:
            # Bound here, not in run(), so that a busy port is a plain startup error.
            try:
                self._datagram.open()
            except OSError as err:
                raise OSError(
                    f"datagram path: cannot use udp port {settings.datagram_port}: "
                    f"{err.strerror or err} (set trunk.datagram_port, or trunk.datagram false)"
                ) from err

    # ----- public API -----

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and keep the bootstrap trunks until cancelled.

        `task_status.started` receives `listen_addrs()` once listening.
        """
        quiet_libp2p_logging()
        host = build_host(self._key_pair, self._settings.security)
        host.set_stream_handler(_STREAM_PROTOCOL, self._on_inbound_stream)
        self._host = host
        datagram = self._datagram
        try:
            async with host.run(self._listen), trio.open_nursery() as nursery:
                if datagram is not None:
                    log.info("datagram path listening on udp port %d", datagram.port)
                    nursery.start_soon(datagram.run, self._events.records)
                self._nursery = nursery
                self._follow_bootstrap(self._bootstrap)
                addrs = self.listen_addrs()
                log.info("trunk %s listening on %s", self.peer_id, ", ".join(addrs))
                task_status.started(addrs)
                await trio.sleep_forever()
        finally:
            self._host = None
            self._nursery = None
            if datagram is not None:
                datagram.close()

    def set_bootstrap(self, addresses: list[str]) -> tuple[list[str], list[str]]:
        """Dial the addresses of a new bootstrap list from now on (a node whose config
        file changed); returns the addresses (added, retired). A retired address's trunk,
        if up, stays until it breaks; it is just not redialed. Raises TrunkConfigError
        for an address that is not a /.../p2p/<id> multiaddr, changing nothing."""
        infos = [_parse_bootstrap(a) for a in addresses]
        before = set(self._dialers)
        self._bootstrap = infos
        if self._nursery is None:
            return [], []
        self._follow_bootstrap(infos)
        return sorted(set(self._dialers) - before), sorted(before - set(self._dialers))

    def _follow_bootstrap(self, infos: list[PeerInfo]) -> None:
        """One dial loop per bootstrap address (a peer listed with a TCP and a /ws address
        has two; each dials only while the peer has no trunk)."""
        nursery = self._nursery
        assert nursery is not None
        wanted: dict[str, PeerInfo] = {}
        for info in infos:
            if str(info.peer_id) == self.peer_id:
                log.warning("skipping own address in bootstrap list: %s", info)
                continue
            wanted.setdefault(_address_of(info), info)
        for address, (_, retired) in list(self._dialers.items()):
            if address not in wanted:
                retired.set()
                del self._dialers[address]
        for address, info in wanted.items():
            if address not in self._dialers:
                retired = trio.Event()
                self._dialers[address] = (info, retired)
                nursery.start_soon(self._dial_loop, info, retired)

    @property
    def datagram(self) -> DatagramChannel | None:
        """The datagram path's channel (None without one)."""
        return self._datagram

    def listen_addrs(self) -> list[str]:
        if self._host is None:
            raise TrunkNotRunningError("listen_addrs() needs a running trunk")
        return [str(a) for a in self._host.get_addrs()]

    def peers(self) -> list[str]:
        return sorted(self._up)

    def send(self, peer: str, records: list[bytes]) -> bool:
        """Queue `records` for `peer` without waiting.

        Returns False, counting the records as dropped, when there is no trunk to
        `peer` or its queue is over `queue_bytes` (counted `queue_full` too): like
        a switch port, a congested or stalled peer loses packets, and nobody waits
        for it. Raises TrunkRecordError for an empty or oversize record.
        """
        datagram = self._datagram
        if datagram is not None and datagram.usable(peer):
            # DATA goes in datagrams; anything else needs the reliable stream.
            data = [r for r in records if len(r) > 1 and r[1] == wire.TYPE_DATA]
            if len(data) == len(records):
                return datagram.send(peer, data)
            if data and datagram.send(peer, data):
                records = [r for r in records if not (len(r) > 1 and r[1] == wire.TYPE_DATA)]
        return self._send_stream(peer, records)

    def _send_stream(self, peer: str, records: list[bytes]) -> bool:
        link = self._links.get(peer)
        if link is None or link.queue is None or peer not in self._up:
            for record in records:
                check_record(record)
            self._counters.drops += len(records)
            return False
        try:
            queued = link.queue.offer(records)
        except SendQueueClosed:
            queued = False
        else:
            if not queued:
                self._counters.queue_full += len(records)
        if not queued:
            self._counters.drops += len(records)
            link.stats.drops += len(records)
        return queued

    async def wait_for_room(self, peer: str, *, timeout: float) -> None:
        """Wait, at most `timeout`, for room in the queue of a peer that is draining it.

        For a node's own traffic (its TAP) this is flow control towards a busy but
        healthy peer, so local TCP flows slow down instead of losing bursts. A peer whose
        writer made no progress for MOVING_S is not waited for (its packets drop), so a
        stalled or hostile peer costs nothing; forwarding never calls this.
        """
        link = self._links.get(peer)
        if link is None or link.queue is None or not link.queue.full:
            return
        if trio.current_time() - link.progress > MOVING_S:
            return
        with trio.move_on_after(timeout):
            await link.queue.wait_room()

    def disconnect(self, peer: str) -> None:
        """End the trunk to `peer` now (the node refused it); bootstrap peers are redialed."""
        link = self._links.get(peer)
        if link is not None:
            link.broken = True
            link.scope.cancel()

    def stats(self) -> dict[str, int]:
        counters = dict(vars(self._counters))
        counters["peers"] = len(self._up)
        # Process-wide: streams cut off for sending past their receive window (host.py).
        counters["window_violations"] = window_violations()
        if self._datagram is not None:
            counters.update(self._datagram.stats())
        counters["queued_bytes"] = sum(
            link.queue.queued_bytes for link in self._links.values() if link.queue is not None
        )
        return counters

    def path_stats(self) -> dict[str, dict[str, Any]]:
        """Per trunk peer: the transport DATA uses now and, with a datagram path, its
        RTT, loss, datagram size and load (datagram/path.py)."""
        paths = self._datagram.path_stats() if self._datagram is not None else {}
        return {peer: paths.get(peer, {"transport": "stream"}) for peer in sorted(self._up)}

    def peer_stats(self) -> dict[str, dict[str, int]]:
        """Per trunk peer: queued bytes, records and bytes each way, drops."""
        out = {}
        for peer, link in self._links.items():
            if peer in self._up:
                row = dict(vars(link.stats))
                row["queued_bytes"] = link.queue.queued_bytes if link.queue is not None else 0
                out[peer] = row
        return out

    # ----- links -----

    async def _on_inbound_stream(self, stream: INetStream) -> None:
        peer = str(stream.muxed_conn.peer_id)
        await self._serve(stream, opener=peer)

    async def _serve(self, stream: INetStream, *, opener: str) -> bool:
        """Run one trunk stream until it breaks; False if admission or the tie-break
        refused it."""
        link = _Link(peer=str(stream.muxed_conn.peer_id), opener=opener, stream=stream)
        lock = self._locks.setdefault(link.peer, trio.Lock())
        accepted = False
        try:
            verdict = await self._introduce(link)
            if verdict is not True:
                # A peer we refused loses its connection, unless it also holds an admitted
                # trunk (a second stream of a simultaneous open whose introduction failed).
                if verdict is False and link.peer not in self._links:
                    with trio.CancelScope(shield=True), trio.move_on_after(RESET_TIMEOUT_S):
                        await self._close_connection(link.peer)
                return False
            async with lock:
                accepted, predecessor = self._register(link)
                if not accepted:
                    log.debug("refused second trunk stream from %s (tie-break)", link.peer)
                    return False
                if predecessor is None:
                    await self._announce_up(link.peer)
                self._datagram_up(link)
            if predecessor is not None:
                # The old stream's reader may still be inside events.records.
                await predecessor.finished.wait()
            with link.scope:
                await raise_receive_window(stream, RECEIVE_WINDOW)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop, link)
                    await self._read_loop(link)
                    nursery.cancel_scope.cancel()
        except Exception as err:  # any failure of one link must only end that link
            self._counters.link_errors += 1
            log.info("trunk stream to %s failed: %r", link.peer, err)
        finally:
            link.broken = True
            with trio.CancelScope(shield=True), trio.move_on_after(RESET_TIMEOUT_S):
                await self._reset(stream)
            try:
                await self._retire(link, lock)
            finally:
                link.finished.set()
        return accepted

    async def _introduce(self, link: _Link) -> bool | None:
        """Exchange INTRO records: the dialer speaks first, the listener answers only a
        peer it admitted, so a stranger learns nothing about us. True: admitted; False:
        refused (or silent past the deadline); None: the stream broke meanwhile."""
        dialer = link.opener == self.peer_id
        admitted = False
        with trio.move_on_after(INTRO_TIMEOUT_S) as scope:
            try:
                if dialer:
                    await link.stream.write(record_frame([self._events.intro()]))
                first = await self._first_record(link)
                if first is None:
                    self._counters.intro_failures += 1
                    return None
                admitted = self._events.admit(link.peer, first)
                link.datagram = admitted and _offers_datagram(first)
                if admitted and not dialer:
                    await link.stream.write(record_frame([self._events.intro()]))
            except Exception as err:  # the stream broke during the exchange
                self._counters.intro_failures += 1
                log.info("introduction with %s failed: %r", link.peer, err)
                return None
        if scope.cancelled_caught:
            self._counters.intro_timeouts += 1
            admitted = False
        if not admitted:
            self._counters.admission_refused += 1
            log.info("trunk peer %s not admitted", link.peer)
        return admitted

    async def _first_record(self, link: _Link) -> bytes | None:
        """The first record the peer sends; later ones read with it wait in `pending`."""
        while True:
            try:
                chunk = await link.stream.read(READ_SIZE)
            except StreamEOF:
                return None
            if not chunk:
                return None
            records = link.splitter.feed(chunk)
            if records:
                # Records after it (and a framing error after them) are the read loop's.
                link.pending = records[1:]
                return records[0]
            if link.splitter.error is not None:
                return None

    async def _close_connection(self, peer: str) -> None:
        host = self._host
        if host is None:
            return
        try:
            await host.get_network().close_peer(ID.from_base58(peer))
        except Exception as err:  # already gone
            log.debug("closing the connection to %s failed: %r", peer, err)

    def _register(self, link: _Link) -> tuple[bool, _Link | None]:
        """Make `link` the peer's trunk unless the current one wins the tie-break.

        Returns (accepted, replaced link). A new stream replaces the current one
        when that is broken, was opened by the same side (the opener redialed),
        is older than SIMULTANEOUS_OPEN_WINDOW_S (the peer saw it die before we
        did), or was opened by the higher peer id. So when both sides open a
        stream at once, both keep the one opened by the lower peer id.
        """
        current = self._links.get(link.peer)
        if current is None:
            link.queue = SendQueue(self._settings.queue_bytes)
            self._links[link.peer] = link
            return True, None
        replace = (
            current.broken
            or current.opener == link.opener
            or trio.current_time() - current.started >= SIMULTANEOUS_OPEN_WINDOW_S
            or _peer_bytes(link.opener) < _peer_bytes(current.opener)
        )
        if not replace:
            self._counters.streams_refused += 1
            return False, None
        self._counters.streams_replaced += 1
        link.queue = current.queue
        self._links[link.peer] = link
        current.broken = True
        # Its writer must stop taking from the shared queue now; its reader is
        # left to finish a node-layer call in progress and then stops by itself.
        current.writer_scope.cancel()
        if not current.delivering:
            current.scope.cancel()
        return True, current

    async def _announce_up(self, peer: str) -> None:
        self._counters.trunks_up += 1
        log.info("trunk up: %s", peer)
        await self._events.peer_up(peer)
        self._up.add(peer)

    async def _retire(self, link: _Link, lock: trio.Lock) -> None:
        """Forget `link` if it is still the peer's trunk, and tell the node layer."""
        try:
            async with lock:
                if self._forget(link):
                    self._counters.trunks_down += 1
                    log.info("trunk down: %s", link.peer)
                    await self._events.peer_down(link.peer)
        finally:
            # Cancelled before the lock was ours (shutdown): forget without telling.
            self._forget(link)

    def _forget(self, link: _Link) -> bool:
        """Drop `link` from the tables; True if peer_up had been delivered for it."""
        if self._links.get(link.peer) is not link:
            return False
        del self._links[link.peer]
        if self._datagram is not None:
            self._datagram.link_down(link.peer)
        if link.queue is not None:
            self._counters.drops += link.queue.close()
        was_up = link.peer in self._up
        self._up.discard(link.peer)
        return was_up

    async def _reset(self, stream: INetStream) -> None:
        try:
            await stream.reset()
        except Exception as err:  # the connection may already be gone; nothing to do
            log.debug("stream reset failed: %r", err)

    async def _write_loop(self, link: _Link) -> None:
        queue = link.queue
        assert queue is not None
        stream = link.stream
        counters = self._counters
        with link.writer_scope:
            while True:
                try:
                    data, count = await queue.take()
                except SendQueueClosed:
                    return
                try:
                    await write_within_window(stream, data, stall_s=self._settings.stall_timeout_s)
                except TrunkStalled as err:
                    counters.drops += count
                    counters.stalls += 1
                    log.warning("trunk to %s stalled (%s); disconnecting", link.peer, err)
                    link.broken = True
                    link.scope.cancel()
                    return
                except BaseException:
                    counters.drops += count
                    raise
                link.progress = trio.current_time()
                counters.writes += 1
                counters.records_sent += count
                counters.bytes_sent += len(data) - 4 * count
                link.stats.records_sent += count
                link.stats.bytes_sent += len(data) - 4 * count

    async def _read_loop(self, link: _Link) -> None:
        splitter = link.splitter
        read = link.stream.read
        deliver = self._events.records
        counters = self._counters
        stats = link.stats
        peer = link.peer
        records, link.pending = link.pending, []
        while True:
            if not records:
                try:
                    chunk = await read(READ_SIZE)
                except StreamEOF:
                    log.debug("trunk stream from %s ended", peer)
                    return
                if not chunk:
                    return
                counters.reads += 1
                records = splitter.feed(chunk)
            if records and self._datagram is not None:
                records = self._take_path_records(peer, records)
            if records:
                size = sum(map(len, records))
                counters.records_received += len(records)
                counters.bytes_received += size
                stats.records_received += len(records)
                stats.bytes_received += size
                link.delivering = True
                try:
                    await deliver(peer, records)
                finally:
                    link.delivering = False
                records = []
                if link.broken:
                    return
            if splitter.error is not None:
                counters.protocol_errors += 1
                log.warning("trunk protocol error from %s: %s; resetting", peer, splitter.error)
                return

    # ----- datagram path -----

    def _datagram_up(self, link: _Link) -> None:
        """Offer the datagram path on a new trunk stream if both INTROs offer it."""
        datagram = self._datagram
        if datagram is None or not link.datagram:
            return
        remote = link.stream.get_remote_address()
        peer = link.peer
        datagram.link_up(
            peer,
            _peer_bytes(peer),
            remote[0] if remote is not None else None,
            lambda record: self._send_stream(peer, [record]),
        )

    def _take_path_records(self, peer: str, records: list[bytes]) -> list[bytes]:
        """Hand PATH records to the datagram path; the rest go to the node layer."""
        if not any(is_path_record(r) for r in records):
            return records
        assert self._datagram is not None
        rest = []
        for record in records:
            if is_path_record(record):
                self._datagram.on_path_record(peer, record)
            else:
                rest.append(record)
        return rest

    # ----- dialing -----

    async def _dial_loop(self, info: PeerInfo, retired: trio.Event) -> None:
        """Keep a trunk to one bootstrap peer until it leaves the bootstrap list."""
        peer = str(info.peer_id)
        backoff = Backoff(self._settings.reconnect_min_s, self._settings.reconnect_max_s)
        had_trunk = False

        async def pause(delay: float) -> None:
            with trio.move_on_after(delay):
                await retired.wait()

        while not retired.is_set():
            while (current := self._links.get(peer)) is not None:
                await current.finished.wait()
            if retired.is_set():
                return
            stream = await self._dial(info)
            if stream is None:
                self._counters.dial_failures += 1
                await pause(backoff.next_delay())
                continue
            if had_trunk:
                self._counters.reconnects += 1
            had_trunk = True
            started = trio.current_time()
            await self._serve(stream, opener=self.peer_id)
            if trio.current_time() - started >= self._settings.reconnect_max_s:
                # It held for a while: this is a fresh failure, not a flapping peer.
                backoff.reset()
            await pause(backoff.next_delay())

    async def _dial(self, info: PeerInfo) -> INetStream | None:
        host = self._host
        if host is None:
            return None
        with trio.move_on_after(DIAL_TIMEOUT_S):
            try:
                # Dial only the configured address: identify fills the peerstore with the
                # peer's self-reported listen addresses (e.g. 127.0.0.1), which from
                # another network namespace or host can reach a different node.
                host.get_peerstore().clear_addrs(info.peer_id)
                # A connection whose peer died without a clean close can linger in the
                # swarm; `connect` would reuse it and every new stream would fail. Only
                # idle ones are dropped: a connection with a stream may carry the peer's
                # own trunk stream, still in negotiation when both sides dial at once.
                network = host.get_network()
                connections = network.get_connections(info.peer_id)
                if connections and not any(conn.get_streams() for conn in connections):
                    await network.close_peer(info.peer_id)
                # The swarm refuses to redial a peer whose addresses all failed recently;
                # our own backoff paces redials, so lift that block.
                unblock = getattr(network, "unblock_peer", None)  # Swarm has it, the ABC not
                if unblock is not None:
                    unblock(info.peer_id)
                await host.connect(info)
                return await host.new_stream(info.peer_id, [_STREAM_PROTOCOL])
            except Exception as err:  # libp2p raises many unrelated types for a failed dial
                log.info("dial %s failed: %r", info.peer_id, err)
                return None
        log.info("dial %s timed out", info.peer_id)
        return None
