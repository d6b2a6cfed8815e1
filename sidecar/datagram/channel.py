"""The datagram path of a node: one UDP socket, keyed per peer over its trunk stream.

    trunk stream up (both INTROs offer datagrams) -> link_up: OFFER sent on the stream
    peer's OFFER  -> KEY (HPKE to the offered one-time key) -> peer's ACK -> send session
    peer's KEY    -> receive session installed, ACK, and a fresh OFFER for the next rekey
    every PROBE_INTERVAL_S: probes at each candidate size; replies make the path up,
                            set its datagram size (path MTU), RTT and loss (path.py)
    send(peer, DATA records): sealed, fragmented to the path's size, sent in GSO runs
    socket readable: GRO receive -> header -> session -> replay window -> AEAD -> records

Only DATA packets travel in datagrams; INTRO, ANNOUNCE, CONTROL and PATH records stay on
the reliable trunk stream, which is also where DATA goes whenever the path is not up
(UDP blocked, not yet probed, or the peer does not offer datagrams). Everything bad a
datagram can be is dropped and counted, and changes no state: see `counters`.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from .. import wire
from . import udp
from .codec import (
    HEADER_LEN,
    KIND_DATA,
    KIND_PROBE,
    KIND_PROBE_REPLY,
    OVERHEAD,
    Ack,
    Key,
    MalformedDatagram,
    Offer,
    header_ok,
    parse_header,
    parse_path_record,
    parse_probe,
    parse_probe_reply,
    probe_body,
    probe_reply_body,
    unpack_header,
    unpack_records,
)
from .keys import KeyExchangeError, OfferKey, seal_session
from .path import LOSS_WINDOW, PROBE_INTERVAL_S, PathStats, candidate_sizes
from .session import Fragments, ReceiveSession, SendSession, SessionExhausted

log = logging.getLogger(__name__)

REKEY_AFTER_S = 120.0
"""A send session is replaced by a freshly keyed one after this long (forward secrecy)."""
RECEIVE_SESSIONS_KEPT = 2
"""Receive sessions per peer: the newest and the one before, for datagrams in flight."""
RECEIVE_BUDGET = 256
"""Receives per wake-up before the records are handed on (bounds a burst's latency)."""

Deliver = Callable[[str, list[bytes]], Awaitable[None]]
SendRecord = Callable[[bytes], bool]


@dataclass(eq=False)
class _Peer:
    peer: str
    peer_bytes: bytes
    host: str
    send_record: SendRecord
    stats: PathStats
    address: udp.Address | None = None
    offer: OfferKey | None = None  # our one-time key the peer may key a session to
    peer_offer: bytes | None = None  # the peer's unused one-time key
    pending: tuple[int, bytes] | None = None  # a KEY sent, its ACK awaited
    send_session: SendSession | None = None
    receive_sessions: list[int] = field(default_factory=list)
    probe_round: int = 0  # rounds so far: which ones sweep every size
    # Our probe rounds still answerable: random wire id -> when we sent it (ns). The RTT
    # is measured against this, never against the time a reply echoes.
    probe_sent: dict[int, int] = field(default_factory=dict)


class DatagramChannel:
    def __init__(
        self,
        *,
        own_id: bytes,
        host: str = "0.0.0.0",
        port: int = 0,
        rekey_after_s: float = REKEY_AFTER_S,
    ) -> None:
        self._own_id = own_id
        self._rekey_after_s = rekey_after_s
        self._host = host
        self._port = port
        self._sock: socket.socket | None = None
        self._peers: dict[str, _Peer] = {}
        self._receive: dict[int, ReceiveSession] = {}
        self.counters: Counter[str] = Counter()
        self.threaded_receive = False

    # ----- lifecycle -----

    def open(self) -> int:
        """Bind the socket; returns the UDP port."""
        self._sock = udp.open_socket(self._host, self._port)
        port: int = self._sock.getsockname()[1]
        self._port = port
        return port

    @property
    def port(self) -> int:
        return self._port

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._peers.clear()
        self._receive.clear()

    async def run(self, deliver: Deliver) -> None:
        """Receive and probe until cancelled (the socket must be open). With
        `threaded_receive` set, a fast-path thread receives (`receive_batch`) and this
        only probes."""
        if self.threaded_receive:
            await self._probe_loop()
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._probe_loop)
            await self._receive_loop(deliver)

    @property
    def fileno(self) -> int:
        assert self._sock is not None
        return self._sock.fileno()

    # ----- peers (called by the trunk) -----

    def link_up(
        self, peer: str, peer_bytes: bytes, host: str | None, send_record: SendRecord
    ) -> None:
        """The trunk to `peer` is up and both sides offer datagrams: offer ours. `host`
        is the trunk's remote address, IPv4 or IPv6 (IPv4-mapped counts as IPv4); None if
        the trunk has none (no datagram path then)."""
        sock = self._sock
        try:
            if host is None:
                raise OSError("the trunk has no remote IP address")
            address = udp.address_of(host)
            if sock is not None and udp.peer_address(sock, host, 0) is None:
                raise OSError(f"the datagram socket has no IPv{address.version}")
            sizes = candidate_sizes(udp.route_mtu(host), ipv6=address.version == 6)
        except (OSError, ValueError) as err:
            self.counters["no_route"] += 1
            log.info("no datagram path to %s (%s): %s", peer, host, err)
            return
        state = _Peer(peer, peer_bytes, str(address), send_record, PathStats(sizes))
        self._drop_peer(peer)
        self._peers[peer] = state
        self._offer(state)

    def link_down(self, peer: str) -> None:
        self._drop_peer(peer)

    def on_path_record(self, peer: str, record: bytes) -> None:
        """A PATH record from the trunk stream of `peer` (authenticated, admitted)."""
        state = self._peers.get(peer)
        if state is None:
            self.counters["path_without_link"] += 1
            return
        try:
            message = parse_path_record(record)
        except MalformedDatagram as err:
            self.counters[f"malformed_{err.reason}"] += 1
            return
        if isinstance(message, Offer):
            self._on_offer(state, message)
        elif isinstance(message, Key):
            self._on_key(state, message)
        else:
            self._on_ack(state, message)

    def usable(self, peer: str) -> bool:
        state = self._peers.get(peer)
        return (
            state is not None
            and state.send_session is not None
            and state.stats.up(time.monotonic())
        )

    def send(self, peer: str, records: list[bytes]) -> bool:
        """Send DATA records over the peer's datagram path; False if it is not up."""
        state = self._peers.get(peer)
        sock = self._sock
        if state is None or state.send_session is None or sock is None:
            return False
        stats = state.stats
        if not stats.up(time.monotonic()) or state.address is None:
            return False
        try:
            sealed = state.send_session.seal_sends(records, stats.datagram_size)
        except SessionExhausted:
            state.send_session = None
            self._rekey(state)
            return False
        address = state.address
        refused = sent = size = 0
        whole: list[bytes] = []  # consecutive whole datagrams, sent as GSO runs
        for item in sealed:
            if isinstance(item, Fragments):
                refused += udp.send_datagrams(sock, whole, address)
                refused += udp.send_fragments(sock, item.parts, item.size, address)
                whole = []
                sent += item.count
                size += item.nbytes()
            else:
                whole.append(item)
                sent += 1
                size += len(item)
        refused += udp.send_datagrams(sock, whole, address)
        stats.sent(sent - refused, size)
        if refused:
            stats.send_refused += refused
            self.counters["send_refused"] += refused
        return True

    # ----- key exchange -----

    def _offer(self, state: _Peer) -> None:
        state.offer = OfferKey()
        state.send_record(Offer(self._port, state.offer.public).encode())

    def _on_offer(self, state: _Peer, offer: Offer) -> None:
        sock = self._sock
        if sock is None:
            return
        state.address = udp.peer_address(sock, state.host, offer.port)
        state.peer_offer = offer.public_key
        if state.send_session is None and state.pending is None:
            self._rekey(state)

    def _rekey(self, state: _Peer) -> None:
        offered = state.peer_offer
        if offered is None or state.pending is not None:
            return
        state.peer_offer = None  # one-time: the peer forgets its private key on use
        session = secrets.randbits(64) or 1
        try:
            enc, key = seal_session(
                offered, sender=self._own_id, receiver=state.peer_bytes, session=session
            )
        except KeyExchangeError as err:
            self.counters["bad_offer"] += 1
            log.info("datagram offer of %s unusable: %s", state.peer, err)
            return
        state.pending = (session, key)
        state.send_record(Key(session, enc, offered).encode())

    def _on_key(self, state: _Peer, message: Key) -> None:
        offer = state.offer
        if offer is None or offer.used or message.offered != offer.public:
            self.counters["stale_key"] += 1
            return
        if message.session in self._receive:
            self.counters["session_collision"] += 1
            return
        try:
            key = offer.open_session(
                message.enc,
                sender=state.peer_bytes,
                receiver=self._own_id,
                session=message.session,
            )
        except KeyExchangeError as err:
            self.counters["bad_key"] += 1
            log.info("datagram key of %s unusable: %s", state.peer, err)
            return
        self._receive[message.session] = ReceiveSession(message.session, key, state.peer)
        state.receive_sessions.append(message.session)
        while len(state.receive_sessions) > RECEIVE_SESSIONS_KEPT:
            self._receive.pop(state.receive_sessions.pop(0), None)
        state.send_record(Ack(message.session).encode())
        self.counters["sessions_received"] += 1
        self._offer(state)  # the key for the peer's next rekey

    def _on_ack(self, state: _Peer, ack: Ack) -> None:
        if state.pending is None or state.pending[0] != ack.session:
            self.counters["stale_ack"] += 1
            return
        session, key = state.pending
        state.pending = None
        state.send_session = SendSession(session, key)
        self.counters["sessions_sent"] += 1
        log.info("datagram session to %s keyed", state.peer)

    def _drop_peer(self, peer: str) -> None:
        state = self._peers.pop(peer, None)
        if state is not None:
            for session in state.receive_sessions:
                self._receive.pop(session, None)

    # ----- probing -----

    async def _probe_loop(self) -> None:
        while True:
            now = time.monotonic()
            for receiving in self._receive.values():
                # Records whose fragments stopped coming are given up even when no new
                # record arrives to push them out.
                given_up = receiving.expire(now)
                if given_up:
                    self.counters["fragments_given_up"] += given_up
            for state in list(self._peers.values()):
                session = state.send_session
                if session is None:
                    continue
                if now - session.created >= self._rekey_after_s:
                    self._rekey(state)
                self._probe(state, session)
            await trio.sleep(PROBE_INTERVAL_S)

    def _probe(self, state: _Peer, session: SendSession) -> None:
        sock = self._sock
        if sock is None or state.address is None:
            return
        state.probe_round += 1
        sizes = state.stats.sizes_for(state.probe_round)
        # A random id per round: the peer can answer only a probe it received, not one it
        # expects (sequence numbers would let it answer early and look faster).
        round_id = secrets.randbits(64)
        state.stats.round_started(round_id, len(sizes))
        sent_ns = time.monotonic_ns()
        state.probe_sent[round_id] = sent_ns
        while len(state.probe_sent) > LOSS_WINDOW:
            del state.probe_sent[next(iter(state.probe_sent))]
        for size in sizes:
            try:
                datagram = session.seal(KIND_PROBE, probe_body(round_id, sent_ns, size))
            except SessionExhausted:
                return
            udp.send_run(sock, [datagram], state.address)

    # ----- receiving -----

    async def _receive_loop(self, deliver: Deliver) -> None:
        sock = self._sock
        assert sock is not None
        while True:
            await trio.lowlevel.wait_readable(sock.fileno())
            for peer, records in self.receive_batch().items():
                await deliver(peer, records)

    def receive_batch(self) -> dict[str, list[bytes]]:
        """Receive what waits (up to RECEIVE_BUDGET receives): DATA records by peer."""
        sock = self._sock
        if sock is None:
            return {}
        by_peer: dict[str, list[bytes]] = {}
        now = time.monotonic()
        for _ in range(RECEIVE_BUDGET):
            got = udp.receive(sock)
            if got is None:
                break
            data, segment, source = got
            if not data:
                if source[0]:  # an empty datagram (not an ICMP error report)
                    self.counters["malformed_short"] += 1
                continue
            if 0 < segment < len(data):
                self._on_run(memoryview(data), segment, now, by_peer)
            else:
                self.on_datagram(data, now, by_peer)
        return {peer: records for peer, records in by_peer.items() if peer in self._peers}

    def _on_run(
        self, run: memoryview, segment: int, now: float, out: dict[str, list[bytes]]
    ) -> None:
        """The datagrams of one GRO receive (each `segment` bytes, the last may be
        shorter): consecutive fragments of one record go to its reassembly as one block
        (one GSO send of a sender comes back as one GRO receive, so a 64 KiB unit costs
        a block or two, not a call per fragment); anything else goes one by one."""
        size = len(run)
        pos = 0
        while pos < size:
            taken = self._fragment_block(run, pos, segment, now, out)
            if taken:
                pos += taken
                continue
            end = min(pos + segment, size)
            self.on_datagram(run[pos:end], now, out)
            pos = end

    def _fragment_block(
        self, run: memoryview, pos: int, segment: int, now: float, out: dict[str, list[bytes]]
    ) -> int:
        """Hand the fragments of one record that follow each other from `pos` to its
        session at once: the bytes taken, or 0 (nothing done, nothing counted) when the
        datagram at `pos` and the next are not two such fragments."""
        size = len(run)
        if size - pos <= segment + HEADER_LEN:
            return 0
        version, kind, index, count, sid, counter = unpack_header(run, pos)
        if count < 2 or not header_ok(version, kind, index, count, sid):
            return 0
        session = self._receive.get(sid)
        if session is None:
            return 0
        # Each further datagram must be the next fragment of the same record: a lost or
        # foreign datagram ends the block (it and the rest go their own way).
        pieces = [run[pos + HEADER_LEN : pos + segment]]
        p = pos + segment
        while p + HEADER_LEN < size and len(pieces) < count - index:
            n = len(pieces)
            if unpack_header(run, p) != (version, kind, index + n, count, sid, counter + n):
                break
            pieces.append(run[p + HEADER_LEN : p + segment])
            p += segment
        if len(pieces) < 2:
            return 0
        taken = min(p, size) - pos
        added = session.add_pieces(index, count, counter - index, pieces, now)
        self._fragments_added(session, added, len(pieces), taken, out)
        return taken

    def _fragments_added(
        self,
        session: ReceiveSession,
        added: tuple[bytes | None, int],
        datagrams: int,
        size: int,
        out: dict[str, list[bytes]],
    ) -> None:
        """Count what adding fragments to `session` did; deliver the record it completed."""
        record, given_up = added
        if given_up:
            self.counters["fragments_given_up"] += given_up
        if session.refused:
            self.counters[session.refused] += 1
        state = self._peers.get(session.peer)
        if state is not None:
            state.stats.datagrams_received += datagrams
            state.stats.bytes_received += size
            if record is not None:
                self._deliver_records(session.peer, [record], out)

    def on_datagram(
        self, datagram: bytes | memoryview, now: float, out: dict[str, list[bytes]]
    ) -> None:
        """Authenticate one datagram and act on it; DATA records land in `out[peer]`."""
        size = len(datagram)
        if size <= HEADER_LEN:
            self.counters["malformed_short"] += 1
            return
        version, kind, index, count, sid, counter = unpack_header(datagram)
        if not header_ok(version, kind, index, count, sid) or (count == 1 and size < OVERHEAD):
            try:
                parse_header(datagram)
            except MalformedDatagram as err:
                self.counters[f"malformed_{err.reason}"] += 1
            return
        session = self._receive.get(sid)
        if session is None:
            self.counters["unknown_session"] += 1
            return
        view = datagram if isinstance(datagram, memoryview) else memoryview(datagram)
        if count > 1:
            # The bulk of a 64 KiB unit: fragments, opened once the record is whole.
            added = session.add_fragment(index, count, counter, view[HEADER_LEN:], now)
            self._fragments_added(session, added, 1, size, out)
            return
        plaintext = session.open_counter(counter, view)
        if plaintext is None:
            self.counters[session.refused] += 1
            return
        state = self._peers.get(session.peer)
        if state is None:
            return
        stats = state.stats
        stats.datagrams_received += 1
        stats.bytes_received += size
        try:
            if kind == KIND_DATA:
                self._deliver_records(session.peer, unpack_records(plaintext), out)
            elif kind == KIND_PROBE:
                self._answer_probe(state, plaintext, len(datagram))
            else:
                probe_id, _echoed_ns, size = parse_probe_reply(plaintext)
                sent_ns = state.probe_sent.get(probe_id)
                if sent_ns is None:
                    # Not a round of ours still open: guessed, replayed or long late.
                    self.counters["probe_unknown"] += 1
                else:
                    rtt = (time.monotonic_ns() - sent_ns) / 1e9
                    state.stats.reply(probe_id, size, rtt, now)
        except MalformedDatagram as err:
            # Authentic but ill-formed: only a broken peer sends this.
            self.counters[f"malformed_{err.reason}"] += 1

    def _deliver_records(
        self, peer: str, records: list[bytes], out: dict[str, list[bytes]]
    ) -> None:
        bucket = out.setdefault(peer, [])
        for record in records:
            if len(record) > 1 and record[1] == wire.TYPE_DATA:
                bucket.append(record)
            else:
                self.counters["not_data"] += 1

    def _answer_probe(self, state: _Peer, plaintext: bytes, size: int) -> None:
        probe_id, sent_ns = parse_probe(plaintext)
        session = state.send_session
        sock = self._sock
        if session is None or sock is None or state.address is None:
            self.counters["probe_unanswered"] += 1
            return
        try:
            reply = session.seal(KIND_PROBE_REPLY, probe_reply_body(probe_id, sent_ns, size))
        except SessionExhausted:
            return
        udp.send_run(sock, [reply], state.address)

    def sessions(self, peer: str) -> tuple[int | None, list[int]]:
        """The send session id to `peer` and the receive session ids from it."""
        state = self._peers.get(peer)
        if state is None:
            return None, []
        send = state.send_session.session if state.send_session is not None else None
        return send, list(state.receive_sessions)

    # ----- status -----

    def stats(self) -> dict[str, int]:
        out = {f"datagram_{k}": v for k, v in sorted(self.counters.items())}
        out["datagram_peers_up"] = sum(1 for p in self._peers if self.usable(p))
        out["datagram_partial_records"] = sum(r.partial_records for r in self._receive.values())
        return out

    def path_stats(self) -> dict[str, dict[str, Any]]:
        """Per peer with a datagram path: transport in use, RTT, loss, MTU, load."""
        now = time.monotonic()
        return {
            peer: state.stats.snapshot(now, keyed=state.send_session is not None)
            for peer, state in self._peers.items()
        }
