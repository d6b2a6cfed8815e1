"""The datagram path's parts on their own: wire formats, HPKE session keys bound to both
peers, sealing and opening (fragments, replay window, forgeries), GSO runs over a real
UDP socket pair, and the path's MTU/RTT/loss bookkeeping."""

from __future__ import annotations

import os
import socket
import time
import tracemalloc

import pytest
import trio
from datagram_links import A_ID, B_ID, link_and_wait

from peertap.sidecar import wire
from peertap.sidecar.datagram import codec, keys, path, udp
from peertap.sidecar.datagram.channel import DatagramChannel
from peertap.sidecar.datagram.session import (
    MAX_PARTIAL,
    Fragments,
    ReceiveSession,
    SendSession,
)


def data_packet(size: int) -> bytes:
    """A record that looks like a DATA packet (the path carries only those)."""
    return bytes([wire.VERSION, wire.TYPE_DATA, 8, 0]) + os.urandom(size - 4)


def keyed_pair(session: int = 77) -> tuple[SendSession, ReceiveSession]:
    offer = keys.OfferKey()
    enc, key = keys.seal_session(offer.public, sender=A_ID, receiver=B_ID, session=session)
    received = offer.open_session(enc, sender=A_ID, receiver=B_ID, session=session)
    assert received == key
    return SendSession(session, key), ReceiveSession(session, received, "peer-a")


def open_all(rx: ReceiveSession, datagrams: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for d in datagrams:
        header = codec.parse_header(d)
        if header.count == 1:
            out.extend(codec.unpack_records(rx.open(header, d)))
            continue
        record, _ = rx.reassemble(header, d, time.monotonic())
        if record is not None:
            out.append(record)
        elif rx.refused:
            raise codec.MalformedDatagram(rx.refused)
    return out


def receive_datagrams(sock: socket.socket, count: int) -> list[bytes]:
    """The datagrams `sock` receives (GRO runs cut up) until `count` came, or 5 s."""
    got: list[bytes] = []
    deadline = time.monotonic() + 5
    while len(got) < count and time.monotonic() < deadline:
        received = udp.receive(sock)
        if received is None:
            time.sleep(0.01)
            continue
        data, segment, _ = received
        got.extend(bytes(d) for d in udp.split(data, segment))
    return got


def test_path_records_round_trip_and_refuse_bad_shapes() -> None:
    offer = codec.Offer(4001, bytes(range(32)))
    key = codec.Key(2**63 + 5, os.urandom(32), os.urandom(32))
    ack = codec.Ack(9)
    for message in (offer, key, ack):
        record = message.encode()
        assert codec.is_path_record(record)
        assert codec.parse_path_record(record) == message
    for bad, reason in [
        (offer.encode()[:-1], "path_kind"),
        (codec.Offer(0, bytes(32)).encode(), "path_offer"),
        (codec.Key(0, bytes(32), bytes(32)).encode(), "path_key"),
        (bytes([wire.VERSION, 6, 1, 0, 9]), "path_kind"),
        (bytes([wire.VERSION, 6, 2, 0, 1]) + bytes(34), "path_prefix"),
        (bytes([wire.VERSION, 6]), "path_short"),
    ]:
        with pytest.raises(codec.MalformedDatagram) as err:
            codec.parse_path_record(bad)
        assert err.value.reason == reason


def test_a_session_key_is_bound_to_both_peers_and_the_session() -> None:
    offer = keys.OfferKey()
    enc, key = keys.seal_session(offer.public, sender=A_ID, receiver=B_ID, session=1)
    other = keys.OfferKey()
    assert other.open_session(enc, sender=A_ID, receiver=B_ID, session=1) != key
    for sender, receiver, session in [(B_ID, A_ID, 1), (A_ID, B_ID, 2), (A_ID, A_ID, 1)]:
        again = keys.OfferKey()
        again_enc, again_key = keys.seal_session(
            again.public, sender=A_ID, receiver=B_ID, session=1
        )
        assert (
            again.open_session(again_enc, sender=sender, receiver=receiver, session=session)
            != again_key
        )
    # An offered key opens one session, never a second.
    assert offer.open_session(enc, sender=A_ID, receiver=B_ID, session=1) == key
    with pytest.raises(keys.KeyExchangeError):
        offer.open_session(enc, sender=A_ID, receiver=B_ID, session=1)
    with pytest.raises(keys.KeyExchangeError):
        keys.seal_session(b"short", sender=A_ID, receiver=B_ID, session=1)


def test_small_records_share_datagrams_and_a_large_one_is_fragmented_to_the_size() -> None:
    tx, rx = keyed_pair()
    small = [data_packet(100) for _ in range(30)]
    big = data_packet(65535)
    datagrams = tx.seal_records([*small, big, small[0]], 1472)
    assert all(len(d) <= 1472 for d in datagrams)
    fragments = [d for d in datagrams if codec.parse_header(d).count > 1]
    # Sealed once as a whole (one tag), cut into pieces of the datagram size less a header.
    assert len(fragments) == -(-(len(big) + codec.TAG_LEN) // (1472 - codec.HEADER_LEN))
    # Fragments before the last are exactly the datagram size: one GSO run carries them.
    assert {len(d) for d in fragments[:-1]} == {1472}
    assert len(datagrams) < 30 + len(fragments)
    assert open_all(rx, datagrams) == [*small, big, small[0]]


def test_replays_forgeries_and_unknown_fragments_are_refused_without_moving_state() -> None:
    tx, rx = keyed_pair()
    first, second = (
        tx.seal_records([data_packet(200)], 1472),
        tx.seal_records([data_packet(200)], 1472),
    )
    open_all(rx, first)
    with pytest.raises(codec.MalformedDatagram) as err:
        open_all(rx, first)
    assert err.value.reason == "replay"
    forged = bytearray(second[0])
    forged[-1] ^= 1
    with pytest.raises(codec.MalformedDatagram) as err:
        open_all(rx, [bytes(forged)])
    assert err.value.reason == "auth"
    # The forgery moved nothing: the genuine datagram with that counter still opens.
    assert len(open_all(rx, second)) == 1
    # A forged header (bigger counter, other session bits) does not authenticate either.
    h = codec.parse_header(second[0])
    fake = codec.Header(h.kind, 0, 1, h.session, h.counter + 50).encode() + second[0][20:]
    with pytest.raises(codec.MalformedDatagram):
        open_all(rx, [fake])
    assert rx.window.highest == h.counter


def test_reassembly_is_bounded() -> None:
    tx, rx = keyed_pair()
    given_up = 0
    for _ in range(MAX_PARTIAL + 10):
        fragments = tx.seal_records([data_packet(5000)], 1472)
        header = codec.parse_header(fragments[0])
        record, lost = rx.reassemble(header, fragments[0], time.monotonic())
        assert record is None and rx.refused == ""
        given_up += lost
    assert rx.partial_records == MAX_PARTIAL
    assert given_up == 10
    # The next record's first fragment, much later: every stale one is given up.
    late = tx.seal_records([data_packet(5000)], 1472)[0]
    header = codec.parse_header(late)
    _, lost = rx.reassemble(header, late, time.monotonic() + 60)
    assert lost == MAX_PARTIAL


def test_kept_fragments_hold_only_their_own_bytes_not_the_receive_buffers() -> None:
    """Anyone who can reach the port can start partial records (fragments are checked only
    once whole): each kept piece must cost its own size, not the receive buffer (a
    coalesced run of up to 64 KiB) it arrived in."""
    _, rx = keyed_pair()
    pieces_per_record = 8
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        now = time.monotonic()
        for record in range(MAX_PARTIAL):
            base = 1 + record * 256
            for i in range(pieces_per_record):
                header = codec.Header(codec.KIND_DATA, i, 200, rx.session, base + i)
                received = bytearray(header.encode() + bytes(64 * 1024 - codec.HEADER_LEN))
                view = memoryview(bytes(received))
                rx.add_fragment(
                    i, 200, base + i, view[codec.HEADER_LEN : codec.HEADER_LEN + 16], now
                )
                del view, received
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rx.partial_records == MAX_PARTIAL
    # 512 pieces of 16 bytes; pinned buffers would be 32 MiB.
    assert held - before < 1024 * 1024


def test_forged_fragments_never_deliver_and_old_records_leave_no_state() -> None:
    tx, rx = keyed_pair()
    record = data_packet(9000)
    fragments = tx.seal_records([record], 1472)
    now = time.monotonic()
    # A forged piece (any bytes under a real header) spoils only its record: auth fails.
    forged = bytearray(fragments[1])
    forged[-1] ^= 1
    for d in [fragments[0], bytes(forged), *fragments[2:]]:
        got, _ = rx.reassemble(codec.parse_header(d), d, now)
        assert got is None
    assert rx.refused == "auth" and rx.partial_records == 0
    # A second copy of a fragment is refused; the record still opens from the first ones.
    fragments = tx.seal_records([record], 1472)
    assert rx.reassemble(codec.parse_header(fragments[0]), fragments[0], now)[0] is None
    assert rx.reassemble(codec.parse_header(fragments[0]), fragments[0], now)[0] is None
    assert rx.refused == "fragment_conflict"
    for d in fragments[1:]:
        got, _ = rx.reassemble(codec.parse_header(d), d, now)
    assert got == record
    # Replayed fragments of a delivered record are refused at once and stored nowhere.
    for d in fragments:
        assert rx.reassemble(codec.parse_header(d), d, now)[0] is None
        assert rx.refused == "replay"
    assert rx.partial_records == 0
    # Pieces adding up to more than any record are given up.
    head = codec.Header(codec.KIND_DATA, 0, 200, tx.session, tx.counter + 1)
    for i in range(200):
        h = codec.Header(codec.KIND_DATA, i, 200, head.session, head.counter + i)
        rx.reassemble(h, h.encode() + bytes(1400), now)
        if rx.refused:
            break
    assert rx.refused == "fragment_oversize" and rx.partial_records == 0


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "short"),
        (bytes(20), "short"),
        (codec.Header(1, 0, 1, 5, 1).encode() + bytes(15), "short"),
        (codec.Header(1, 0, 1, 5, 1).encode().replace(b"\x02", b"\x03", 1) + bytes(16), "version"),
        (codec.Header(7, 0, 1, 5, 1).encode() + bytes(16), "kind"),
        (codec.Header(1, 2, 2, 5, 1).encode() + bytes(16), "fragment"),
        (codec.Header(1, 0, 0, 5, 1).encode() + bytes(16), "fragment"),
        (codec.Header(2, 0, 2, 5, 1).encode() + bytes(16), "fragment"),
        (codec.Header(1, 0, 1, 0, 1).encode() + bytes(16), "session"),
    ],
)
def test_malformed_headers_are_named(raw: bytes, reason: str) -> None:
    with pytest.raises(codec.MalformedDatagram) as err:
        codec.parse_header(raw)
    assert err.value.reason == reason


def test_gso_runs_over_a_real_socket_pair_arrive_as_the_datagrams_sent() -> None:
    receiver = udp.open_socket("127.0.0.1", 0)
    sender = udp.open_socket("127.0.0.1", 0)
    try:
        tx, rx = keyed_pair()
        records = [data_packet(65000), data_packet(80), data_packet(30000)]
        datagrams = tx.seal_records(records, 1472)
        runs = udp.runs(datagrams)
        assert len(runs) < len(datagrams) / 10
        assert [d for run in runs for d in run] == datagrams
        address = receiver.getsockname()
        for run in runs:
            assert udp.send_run(sender, run, address) == 0
        got = receive_datagrams(receiver, len(datagrams))
        assert sorted(got) == sorted(datagrams)
        assert open_all(rx, got) == records
    finally:
        receiver.close()
        sender.close()


@pytest.mark.parametrize("size", [1232, 1472, 9000])
def test_fragments_gathered_into_gso_sends_arrive_as_the_datagrams_they_stand_for(
    size: int,
) -> None:
    """A fragmented record leaves as header and piece buffers gathered by the send call:
    what arrives is exactly the datagrams those pairs stand for, and they open to the
    records sent, with small records around them in order."""
    receiver = udp.open_socket("127.0.0.1", 0)
    sender = udp.open_socket("127.0.0.1", 0)
    try:
        tx, rx = keyed_pair()
        records = [data_packet(100), data_packet(65000), data_packet(200), data_packet(size * 3)]
        sealed = tx.seal_sends(records, size)
        expected: list[bytes] = []
        address = receiver.getsockname()
        for item in sealed:
            if isinstance(item, Fragments):
                assert all(len(p) == codec.HEADER_LEN for p in item.parts[::2])
                datagrams = item.datagrams()
                assert all(len(d) == size for d in datagrams[:-1]) and len(datagrams[-1]) <= size
                expected += datagrams
                assert udp.send_fragments(sender, item.parts, item.size, address) == 0
            else:
                expected.append(item)
                assert udp.send_run(sender, [item], address) == 0
        got = receive_datagrams(receiver, len(expected))
        assert got == expected
        assert open_all(rx, got) == records
    finally:
        receiver.close()
        sender.close()


def test_candidate_sizes_and_path_bookkeeping() -> None:
    assert path.candidate_sizes(1500) == [1472, 1452, 1400, 1232]
    assert path.candidate_sizes(9000)[0] == 8972
    assert path.candidate_sizes(1280) == [1252, 1232]
    assert path.candidate_sizes(1500, ipv6=True) == [1452, 1400, 1232]
    assert path.candidate_sizes(1280, ipv6=True) == [1232]
    stats = path.PathStats(path.candidate_sizes(1500))
    assert stats.sizes_for(2) == stats.sizes  # nothing answered yet: sweep every round
    now = 100.0
    for round_id in range(1, 5):
        stats.round_started(round_id, len(stats.sizes))
        if round_id != 2:  # round 2 lost entirely
            stats.reply(round_id, 1452, 0.001, now)
            stats.reply(round_id, 1232, 0.002, now)
    assert stats.datagram_size == 1452  # 1472 never answered: larger than the path
    assert stats.up(now) and not stats.up(now + path.DOWN_AFTER_S)
    assert stats.went_down == 1
    assert stats.loss() == pytest.approx(1 / 3)
    assert 0.001 <= stats.rtt_s <= 0.002
    # Once up, a round probes the smallest size only, with a sweep every SWEEP_EVERY.
    assert stats.sizes_for(2) == [1232]
    assert stats.sizes_for(path.SWEEP_EVERY + 1) == stats.sizes


def test_a_channel_drops_and_counts_datagrams_it_cannot_use() -> None:
    channel = DatagramChannel(own_id=A_ID, host="127.0.0.1")
    channel.open()
    try:
        out: dict[str, list[bytes]] = {}
        tx, _ = keyed_pair(session=99)
        for d in [b"x", os.urandom(200), *tx.seal_records([data_packet(100)], 1472)]:
            channel.on_datagram(d, time.monotonic(), out)
        assert out == {}
        assert channel.counters["unknown_session"] == 1
        assert sum(v for k, v in channel.counters.items() if k.startswith("malformed_")) == 2
        channel.on_path_record("nobody", codec.Ack(1).encode())
        assert channel.counters["path_without_link"] == 1
    finally:
        channel.close()


def test_intro_versions_pick_the_best_common_one() -> None:
    assert wire.common_version(4, 4) == 4
    assert wire.common_version(1, 9) == wire.VERSION
    assert wire.common_version(5, 6) is None
    assert wire.common_version(3, 3) is None
    assert wire.common_version(2, 2) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "0.0.0.0"])
def test_socket_refuses_ip_fragmentation(host: str) -> None:
    """Whatever its family, the socket never lets the kernel fragment (a dual-stack
    socket for its IPv4-mapped traffic too)."""
    sock = udp.open_socket(host, 0)
    try:
        if sock.family == socket.AF_INET6:
            assert sock.getsockopt(socket.IPPROTO_IPV6, udp.IPV6_MTU_DISCOVER) == (
                udp.IPV6_PMTUDISC_DO
            )
        if host != "::1":
            value = sock.getsockopt(socket.IPPROTO_IP, udp.IP_MTU_DISCOVER)
            assert value == udp.IP_PMTUDISC_DO
    finally:
        sock.close()


def test_the_default_socket_is_dual_stack_and_a_bound_one_reaches_its_own_family_only() -> None:
    dual = udp.open_socket("0.0.0.0", 0)
    v4 = udp.open_socket("127.0.0.1", 0)
    v6 = udp.open_socket("::1", 0)
    try:
        assert dual.family == socket.AF_INET6
        assert udp.peer_address(dual, "10.1.2.3", 4001) == ("::ffff:10.1.2.3", 4001)
        assert udp.peer_address(dual, "::ffff:10.1.2.3", 4001) == ("::ffff:10.1.2.3", 4001)
        assert udp.peer_address(dual, "fd31::2", 4001) == ("fd31::2", 4001)
        assert udp.peer_address(v4, "::ffff:10.1.2.3", 4001) == ("10.1.2.3", 4001)
        assert udp.peer_address(v4, "fd31::2", 4001) is None
        assert udp.peer_address(v6, "10.1.2.3", 4001) is None
    finally:
        dual.close(), v4.close(), v6.close()


def test_a_peer_of_a_family_the_socket_lacks_stays_on_the_stream_counted() -> None:
    """An IPv4-only datagram socket told of an IPv6 peer (and the other way round) offers
    no datagram path: counted `no_route`, nothing sent, DATA stays on the trunk stream."""
    cases: list[tuple[str, str | None]] = [
        ("127.0.0.1", "::1"),
        ("::1", "127.0.0.1"),
        ("0.0.0.0", "not-an-ip"),
        ("0.0.0.0", None),  # a trunk with no remote IP address
    ]
    for bind, host in cases:
        channel = DatagramChannel(own_id=A_ID, host=bind)
        channel.open()
        sent: list[bytes] = []
        try:
            channel.link_up("b", B_ID, host, sent.append)
            assert channel.counters["no_route"] == 1
            assert sent == [] and not channel.usable("b")
            assert not channel.send("b", [data_packet(100)])
        finally:
            channel.close()


@pytest.mark.parametrize(
    ("bind", "trunk_host"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("0.0.0.0", "::1"),
        ("0.0.0.0", "127.0.0.1"),
        ("0.0.0.0", "::ffff:127.0.0.1"),
    ],
    ids=["ipv4", "ipv6", "dual-stack-ipv6", "dual-stack-ipv4", "dual-stack-ipv4-mapped"],
)
def test_two_channels_key_probe_carry_data_and_rekey_over_loopback(
    bind: str, trunk_host: str
) -> None:
    """Two real channels on loopback whose PATH records cross in memory (standing in for
    the trunk stream): keyed both ways, the path comes up by probes, DATA crosses, and
    rekeying replaces sessions without losing DATA and keeps two receive sessions. Over
    IPv4, IPv6, and dual-stack sockets (the default) reaching IPv6 and IPv4 peers, the
    latter also as a dual-stack trunk listener reports them (IPv4-mapped)."""
    trio.run(_two_channels, bind, trunk_host)


async def _two_channels(bind: str, trunk_host: str) -> None:
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    a = DatagramChannel(own_id=A_ID, host=bind, rekey_after_s=0.6)
    b = DatagramChannel(own_id=B_ID, host=bind, rekey_after_s=0.6)
    a.open(), b.open()

    async def deliver_to(name: str, peer: str, records: list[bytes]) -> None:
        got[name].extend(records)

    try:
        async with trio.open_nursery() as nursery:
            await link_and_wait(
                nursery,
                a,
                b,
                lambda p, r: deliver_to("a", p, r),
                lambda p, r: deliver_to("b", p, r),
                host=trunk_host,
            )
            first_a, _ = a.sessions("b")
            packets = [data_packet(n) for n in (64, 1400, 9000, 65000)]
            assert a.send("b", packets) and b.send("a", packets[:1])
            with trio.fail_after(10):
                while a.sessions("b")[0] == first_a or len(b.sessions("a")[1]) < 2:
                    await trio.sleep(0.05)
            assert a.send("b", packets)
            with trio.fail_after(5):
                while len(got["b"]) < 2 * len(packets):
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    finally:
        a.close(), b.close()
    assert got["b"] == packets + packets
    assert got["a"] == packets[:1]
    assert len(b.sessions("a")[1]) <= 2
    assert a.counters["sessions_sent"] >= 2 and b.counters["sessions_received"] >= 2
    for channel in (a, b):
        assert not any(k.startswith(("malformed", "stale", "bad")) for k in channel.counters)


async def keyed_channels() -> tuple[DatagramChannel, DatagramChannel]:
    """Two open channels, a and b, keyed to each other over loopback, their tasks stopped
    (datagrams are then fed by hand); the caller closes them."""
    a = DatagramChannel(own_id=A_ID, host="127.0.0.1")
    b = DatagramChannel(own_id=B_ID, host="127.0.0.1")
    a.open(), b.open()

    async def nothing(peer: str, records: list[bytes]) -> None:
        pass

    try:
        async with trio.open_nursery() as nursery:
            await link_and_wait(nursery, a, b, nothing, nothing)
            nursery.cancel_scope.cancel()
    except BaseException:
        a.close(), b.close()
        raise
    return a, b


def test_a_peer_cannot_make_its_path_look_faster_with_its_probe_replies() -> None:
    """The peer holds the session, so its replies authenticate: still, a reply to a round
    it guessed is no sample (round ids are random), and one to a real round that echoes a
    later send time is measured from when the round was really sent."""
    trio.run(_forged_probe_replies)


async def _forged_probe_replies() -> None:
    a, b = await keyed_channels()
    try:
        forger = b._peers["a"].send_session  # what a hostile b holds
        assert forger is not None
        state = a._peers["b"]
        out: dict[str, list[bytes]] = {}
        # Guessed rounds (sequence numbers, as a counter would give them), claiming ~0 RTT.
        replies = state.stats.replies
        for guess in range(1, 101):
            body = codec.probe_reply_body(guess, time.monotonic_ns(), 1232)
            a.on_datagram(forger.seal(codec.KIND_PROBE_REPLY, body), time.monotonic(), out)
        assert a.counters["probe_unknown"] == 100
        assert state.stats.replies == replies
        # A real round, answered with a send time echoed as just now.
        round_id = next(reversed(state.probe_sent))
        await trio.sleep(0.05)
        body = codec.probe_reply_body(round_id, time.monotonic_ns(), 1232)
        a.on_datagram(forger.seal(codec.KIND_PROBE_REPLY, body), time.monotonic(), out)
        assert state.stats.rtt_last_s >= 0.05
    finally:
        a.close(), b.close()


def test_path_measurements_are_prometheus_gauges_per_peer() -> None:
    import urllib.request

    from peertap.sidecar.api import ApiServer, StatusBoard

    board = StatusBoard()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ApiServer(board, f"127.0.0.1:{port}")
    server.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        board.publish(
            {
                "transports": {
                    "p1": {
                        "transport": "datagram",
                        "datagram_up": True,
                        "rtt_ms": 0.5,
                        "loss": 0.25,
                        "datagram_size": 1472,
                        "send_bytes_per_s": 1000,
                    },
                    "p2": {"transport": "stream"},
                }
            }
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            lines = r.read().decode().splitlines()
    finally:
        server.stop()
    for line in (
        'peertap_path_datagram_up{peer="p1"} 1.0',
        'peertap_path_rtt_seconds{peer="p1"} 0.0005',
        'peertap_path_loss_ratio{peer="p1"} 0.25',
        'peertap_path_datagram_bytes{peer="p1"} 1472.0',
        'peertap_path_send_bytes_per_second{peer="p1"} 1000.0',
    ):
        assert line in lines
    assert not any('peer="p2"' in line for line in lines if line.startswith("peertap_path"))


def test_a_busy_datagram_port_is_a_clear_startup_error() -> None:
    from peertap.sidecar.trunk import Trunk, TrunkSettings

    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("0.0.0.0", 0))
    try:
        settings = TrunkSettings(
            seed=bytes(32), listen=["/ip4/127.0.0.1/tcp/0"], datagram_port=busy.getsockname()[1]
        )
        with pytest.raises(OSError, match=r"datagram path: cannot use udp port \d+"):
            Trunk(settings, events=None)  # type: ignore[arg-type]
    finally:
        busy.close()


def test_a_gro_run_reassembles_in_blocks_and_a_lost_or_forged_fragment_costs_nothing_else() -> None:
    """One GRO receive hands over many fragments at once; they are reassembled as blocks of
    consecutive fragments. A fragment lost from the middle of a run leaves only its own
    record waiting (the next record in the same run still opens, and the lost one opens
    once the fragment comes), and a forged copy of a fragment inside a run is refused
    without costing the honest record."""
    trio.run(_gro_run_blocks)


async def _gro_run_blocks() -> None:
    a, b = await keyed_channels()
    try:
        sender = a._peers["b"].send_session
        assert sender is not None
        size = 1472
        room = size - codec.HEADER_LEN
        # Sealed records that fill their last fragment, so one run can hold two records.
        first, second = data_packet(6 * room - codec.TAG_LEN), data_packet(5 * room - codec.TAG_LEN)
        datagrams = sender.seal_records([first, second], size)
        assert len(datagrams) == 11 and {len(d) for d in datagrams} == {size}
        now = time.monotonic()
        out: dict[str, list[bytes]] = {}
        lost = datagrams.pop(3)  # a fragment of the first record
        b._on_run(memoryview(b"".join(datagrams)), size, now, out)
        assert out == {"a": [second]}
        assert b.stats()["datagram_partial_records"] == 1
        b.on_datagram(lost, now, out)
        assert out == {"a": [second, first]}
        assert b.stats()["datagram_partial_records"] == 0

        # A forged copy of fragment 1 (its header, other bytes) right after the real one.
        out = {}
        third = data_packet(6 * room - codec.TAG_LEN)
        honest = sender.seal_records([third], size)
        forged = honest[1][: codec.HEADER_LEN] + os.urandom(room)
        b._on_run(memoryview(b"".join([*honest[:2], forged, *honest[2:]])), size, now, out)
        assert out == {"a": [third]}
        assert b.counters["fragment_conflict"] == 1
        assert b.stats()["datagram_partial_records"] == 0
        assert "auth" not in b.counters
    finally:
        a.close(), b.close()


def test_a_64k_record_sent_in_gso_runs_arrives_whole_through_gro() -> None:
    """A record fragmented at a 1,472-byte datagram size crosses a real UDP socket pair:
    sent in GSO runs, received in GRO runs, reassembled in blocks, intact and in order."""
    trio.run(_gso_gro_records)


async def _gso_gro_records() -> None:
    got: list[bytes] = []
    a = DatagramChannel(own_id=A_ID, host="127.0.0.1")
    b = DatagramChannel(own_id=B_ID, host="127.0.0.1")
    a.open(), b.open()

    async def deliver(peer: str, records: list[bytes]) -> None:
        got.extend(records)

    async def nothing(peer: str, records: list[bytes]) -> None:
        pass

    records = [data_packet(n) for n in (65000, 30000, 65000, 1400, 65000)]
    try:
        async with trio.open_nursery() as nursery:
            await link_and_wait(nursery, a, b, nothing, deliver)
            a._peers["b"].stats.datagram_size = 1472
            assert a.send("b", records)
            with trio.fail_after(10):
                while len(got) < len(records):
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert got == records
        assert b.stats()["datagram_partial_records"] == 0
        assert b._peers["a"].stats.datagrams_received >= 3 * 45
    finally:
        a.close(), b.close()
