"""Trunks against hostile, insecure, restarting, racing, refused, silent and slow peers.

The other side is either a real Trunk or a bare libp2p host that speaks the
trunk protocol by hand, so it can break the framing or open streams at will.
"""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import libp2p.security.secio.transport as secio
import pytest
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol, TSecurityOptions
from libp2p.host.exceptions import StreamFailure
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

from peertap.sidecar.trunk import MAX_RECORD, PROTOCOL_ID, Trunk, TrunkSettings, libp2p_trunk
from peertap.sidecar.trunk.host import build_host, key_pair_from_seed, peer_id_of
from peertap.sidecar.trunk.records import RecordSplitter, encode
from peertap.sidecar.wire import Intro

HANG_GUARD_S = float(os.environ.get("TRUNK_TEST_HANG_GUARD_S", "60"))
TRUNK = TProtocol(PROTOCOL_ID)
StreamHandler = Callable[[INetStream], Awaitable[None]]


INTRO = Intro().encode()
"""The INTRO every side sends here: the first record on every trunk stream."""


class Recorder:
    """TrunkEvents that remember everything; `admits` decides on every INTRO."""

    def __init__(self, *, admits: bool = True) -> None:
        self.events: list[tuple[str, str]] = []
        self.received: dict[str, list[bytes]] = {}
        self.admits = admits
        self.intros: list[tuple[str, bytes]] = []

    def intro(self) -> bytes:
        return INTRO

    def admit(self, peer: str, intro: bytes) -> bool:
        self.intros.append((peer, intro))
        return self.admits

    async def peer_up(self, peer: str) -> None:
        self.events.append(("up", peer))

    async def peer_down(self, peer: str) -> None:
        self.events.append(("down", peer))

    async def records(self, peer: str, records: list[bytes]) -> None:
        assert self.events[-1:] == [("up", peer)], "records outside up..down"
        self.received.setdefault(peer, []).extend(records)

    def got(self, peer: str) -> list[bytes]:
        return self.received.get(peer, [])


def settings(*, seed: bytes | None = None, listen: str, bootstrap: list[str]) -> TrunkSettings:
    return TrunkSettings(
        seed=seed or os.urandom(32),
        listen=[listen],
        bootstrap=bootstrap,
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
    )


async def wait_until(predicate: Callable[[], bool]) -> None:
    with trio.fail_after(HANG_GUARD_S):
        while not predicate():
            await trio.sleep(0.01)


@asynccontextmanager
async def bare_host(
    *, seed: bytes | None = None, handler: StreamHandler | None = None, security: str = "noise"
) -> AsyncIterator[IHost]:
    """A libp2p host without Trunk logic; `security` may be an insecure choice."""
    key_pair = key_pair_from_seed(seed or os.urandom(32))
    if security == "noise":
        host = build_host(key_pair, "noise")
    else:
        insecure: TSecurityOptions = (
            {PLAINTEXT_PROTOCOL_ID: InsecureTransport(key_pair)}
            if security == "plaintext"
            else {secio.ID: secio.Transport(key_pair)}
        )
        host = new_host(
            key_pair=key_pair,
            sec_opt=insecure,
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
            enable_quic=False,
        )
    if handler is not None:
        host.set_stream_handler(TRUNK, handler)
    async with host.run([Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        yield host


def address_of(host: IHost) -> str:
    return str(host.get_addrs()[0])


async def read_until_closed(stream: INetStream) -> str:
    """Read until the trunk side ends the stream; say how it ended.

    py-libp2p reports a stream reset by the other side as EOF or as a reset,
    depending on timing, so callers only learn that it ended.
    """
    try:
        while await stream.read(65536):
            pass
    except Exception as err:
        return type(err).__name__
    return "eof"


async def drain(stream: INetStream) -> tuple[str, bytes]:
    """Everything the trunk side writes until it ends the stream, and how it ended."""
    data = b""
    try:
        while chunk := await stream.read(65536):
            data += chunk
    except Exception as err:
        return type(err).__name__, data
    return "eof", data


async def read_records(stream: INetStream, splitter: RecordSplitter, count: int) -> list[bytes]:
    """Read until `count` records (or more, from the same reads) have come."""
    records: list[bytes] = []
    with trio.fail_after(HANG_GUARD_S):
        while len(records) < count:
            chunk = await stream.read(65536)
            assert chunk, f"stream ended after {records!r}"
            records += splitter.feed(chunk)
    return records


async def introduce_as_dialer(stream: INetStream) -> tuple[RecordSplitter, list[bytes]]:
    """Send our INTRO first, then read the trunk's: it must be its first record.

    Returns the splitter and any records that came in the same read after the INTRO.
    """
    await stream.write(encode([INTRO]))
    splitter = RecordSplitter()
    first, *rest = await read_records(stream, splitter, 1)
    assert first == INTRO
    return splitter, rest


async def introduce_as_listener(stream: INetStream) -> tuple[RecordSplitter, list[bytes]]:
    """Read the dialing trunk's INTRO (its first record), then answer with ours."""
    splitter = RecordSplitter()
    first, *rest = await read_records(stream, splitter, 1)
    assert first == INTRO
    await stream.write(encode([INTRO]))
    return splitter, rest


@pytest.mark.parametrize("bad_length", [0, MAX_RECORD + 1, 2**32 - 1])
def test_a_bad_record_length_resets_the_stream_and_the_trunk_comes_back(bad_length: int) -> None:
    async def main() -> None:
        endings: list[str] = []
        second_stream_got: list[bytes] = []

        async def hostile(stream: INetStream) -> None:
            if not hostile_seen:
                hostile_seen.append(True)
                await introduce_as_listener(stream)
                # Break the framing only once the trunk is up, after the introduction.
                await wait_until(lambda: trunk.peers() == [peer])
                await stream.write(encode([b"before"]) + struct.pack(">I", bad_length) + b"junk")
                endings.append(await read_until_closed(stream))
                return
            splitter, rest = await introduce_as_listener(stream)
            second_stream_got.extend(rest)
            await stream.write(encode([b"after"]))
            while True:
                second_stream_got.extend(splitter.feed(await stream.read(65536)))

        hostile_seen: list[bool] = []
        async with bare_host(handler=hostile) as host, trio.open_nursery() as nursery:
            peer = str(host.get_id())
            events = Recorder()
            trunk = Trunk(
                settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[address_of(host)]), events
            )
            await nursery.start(trunk.run)
            await wait_until(lambda: events.got(peer) == [b"before", b"after"])
            assert len(endings) == 1
            assert events.events == [("up", peer), ("down", peer), ("up", peer)]
            assert trunk.stats()["protocol_errors"] == 1
            assert trunk.stats()["reconnects"] >= 1
            assert trunk.stats()["admission_refused"] == 0
            assert events.intros == [(peer, INTRO), (peer, INTRO)]
            assert trunk.send(peer, [b"carried again"])
            await wait_until(lambda: second_stream_got == [b"carried again"])
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_hostile_dialer_with_an_oversize_length_is_reset_and_counted() -> None:
    async def main() -> None:
        events = Recorder()
        trunk = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), events)
        async with trio.open_nursery() as nursery, bare_host() as host:
            addrs = await nursery.start(trunk.run)
            await host.connect(info_from_p2p_addr(Multiaddr(addrs[0])))
            stream = await host.new_stream(ID.from_base58(trunk.peer_id), [TRUNK])
            peer = str(host.get_id())
            await introduce_as_dialer(stream)
            await wait_until(lambda: events.events == [("up", peer)])
            await stream.write(struct.pack(">I", MAX_RECORD + 1) + b"x" * 100)
            with trio.fail_after(HANG_GUARD_S):
                await read_until_closed(stream)
            await wait_until(lambda: trunk.stats()["protocol_errors"] == 1)
            await wait_until(lambda: events.events == [("up", peer), ("down", peer)])
            assert trunk.peers() == []
            nursery.cancel_scope.cancel()

    trio.run(main)


@pytest.mark.parametrize("security", ["plaintext", "secio"])
def test_a_plaintext_or_secio_dialer_is_refused(security: str) -> None:
    async def main() -> None:
        events = Recorder()
        trunk = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), events)
        async with trio.open_nursery() as nursery, bare_host(security=security) as host:
            addrs = await nursery.start(trunk.run)
            with trio.fail_after(HANG_GUARD_S), pytest.raises(Exception) as refused:
                await host.connect(info_from_p2p_addr(Multiaddr(addrs[0])))
                await host.new_stream(ID.from_base58(trunk.peer_id), [TRUNK])
            assert not isinstance(refused.value, trio.TooSlowError)
            assert events.events == []
            assert trunk.peers() == []
            nursery.cancel_scope.cancel()

    trio.run(main)


@pytest.mark.parametrize("security", ["plaintext", "secio"])
def test_a_trunk_never_comes_up_to_a_plaintext_or_secio_listener(security: str) -> None:
    async def main() -> None:
        accepted: list[INetStream] = []

        async def handler(stream: INetStream) -> None:
            accepted.append(stream)

        events = Recorder()
        async with bare_host(security=security, handler=handler) as host:
            trunk = Trunk(
                settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[address_of(host)]), events
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(trunk.run)
                await wait_until(lambda: trunk.stats()["dial_failures"] >= 3)
                assert accepted == []
                assert events.events == []
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_killed_and_restarted_bootstrap_peer_is_redialed_and_traffic_resumes() -> None:
    async def main() -> None:
        seed_b = os.urandom(32)
        b_events = Recorder()
        async with trio.open_nursery() as nursery:
            b_scope = trio.CancelScope()
            b_first = Trunk(
                settings(seed=seed_b, listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), b_events
            )
            b_addrs = await nursery.start(_run_in_scope, b_first, b_scope)
            a_events = Recorder()
            a = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=b_addrs), a_events)
            await nursery.start(a.run)
            b_id = b_first.peer_id
            await wait_until(lambda: a.peers() == [b_id])
            assert a.send(b_id, [b"first life"])
            await wait_until(lambda: b_events.got(a.peer_id) == [b"first life"])

            b_scope.cancel()
            await wait_until(lambda: a_events.events[-1:] == [("down", b_id)])
            assert not a.send(b_id, [b"lost"])

            b_again = Trunk(
                settings(seed=seed_b, listen=_tcp_part(b_addrs[0]), bootstrap=[]), b_events
            )
            await nursery.start(b_again.run)
            await wait_until(lambda: a.peers() == [b_id])
            assert a.send(b_id, [b"second life"])
            await wait_until(lambda: b_events.got(a.peer_id) == [b"first life", b"second life"])
            assert a_events.events == [("up", b_id), ("down", b_id), ("up", b_id)]
            assert a.stats()["reconnects"] == 1
            nursery.cancel_scope.cancel()

    trio.run(main)


async def _run_in_scope(trunk: Trunk, scope: trio.CancelScope, *, task_status: Any) -> None:
    with scope:
        await trunk.run(task_status=task_status)


def _tcp_part(addr: str) -> str:
    return addr.split("/p2p/")[0]


def _seed_with_id(*, below: str | None = None, above: str | None = None) -> bytes:
    """A seed whose peer id sorts below or above the given one (byte order)."""
    while True:
        seed = os.urandom(32)
        candidate = ID.from_base58(peer_id_of(key_pair_from_seed(seed))).to_bytes()
        if below is not None and candidate < ID.from_base58(below).to_bytes():
            return seed
        if above is not None and candidate > ID.from_base58(above).to_bytes():
            return seed


@pytest.mark.parametrize("bare_side_is_lower", [True, False])
def test_when_both_sides_open_a_stream_the_one_opened_by_the_lower_peer_id_stays(
    bare_side_is_lower: bool,
) -> None:
    async def main() -> None:
        trunk_seed = os.urandom(32)
        trunk_id = peer_id_of(key_pair_from_seed(trunk_seed))
        bare_seed = (
            _seed_with_id(below=trunk_id) if bare_side_is_lower else _seed_with_id(above=trunk_id)
        )
        inbound: list[INetStream] = []
        endings: dict[str, str] = {}
        got: dict[str, list[bytes]] = {"trunk-opened": [], "bare-opened": []}

        async def watch(stream: INetStream, name: str, *, answer_intro: bool) -> None:
            splitter = RecordSplitter()
            try:
                while chunk := await stream.read(65536):
                    got[name] += splitter.feed(chunk)
                    if answer_intro and got[name]:
                        # As listener, answer the trunk's INTRO with ours.
                        answer_intro = False
                        await stream.write(encode([INTRO]))
            except Exception as err:
                endings[name] = type(err).__name__
                return
            endings[name] = "eof"

        async def on_trunk_stream(stream: INetStream) -> None:
            inbound.append(stream)
            await watch(stream, "trunk-opened", answer_intro=True)

        events = Recorder()
        async with bare_host(seed=bare_seed, handler=on_trunk_stream) as host:
            bare_id = str(host.get_id())
            trunk = Trunk(
                settings(
                    seed=trunk_seed, listen="/ip4/127.0.0.1/tcp/0", bootstrap=[address_of(host)]
                ),
                events,
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(trunk.run)
                await wait_until(lambda: len(inbound) == 1 and trunk.peers() == [bare_id])
                # The trunk's own stream is up; now the bare side opens one too.
                own: INetStream | None = None
                try:
                    own = await host.new_stream(ID.from_base58(trunk_id), [TRUNK])
                    await own.write(encode([INTRO]))
                except StreamFailure:
                    # Refused so early that protocol negotiation did not finish.
                    endings["bare-opened"] = "refused"
                else:
                    nursery.start_soon(partial(watch, own, "bare-opened", answer_intro=False))
                loser = "trunk-opened" if bare_side_is_lower else "bare-opened"
                winner = "bare-opened" if bare_side_is_lower else "trunk-opened"
                await wait_until(lambda: loser in endings)
                assert winner not in endings
                assert trunk.send(bare_id, [b"on the winner"])
                # The trunk's INTRO came first on its stream, then the records.
                await wait_until(lambda: got[winner] == [INTRO, b"on the winner"])
                await (own if own is not None and winner == "bare-opened" else inbound[0]).write(
                    encode([b"back"])
                )
                await wait_until(lambda: events.got(bare_id) == [b"back"])
                assert events.events == [("up", bare_id)]
                assert trunk.stats()["reconnects"] == 0
                assert trunk.stats()["admission_refused"] == 0
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_peer_that_opens_a_new_stream_replaces_its_old_one_without_events() -> None:
    async def main() -> None:
        events = Recorder()
        trunk = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), events)
        async with trio.open_nursery() as nursery, bare_host() as host:
            addrs = await nursery.start(trunk.run)
            bare_id = str(host.get_id())
            await host.connect(info_from_p2p_addr(Multiaddr(addrs[0])))
            first = await host.new_stream(ID.from_base58(trunk.peer_id), [TRUNK])
            # A record written with the INTRO is delivered after peer_up.
            await first.write(encode([INTRO, b"one"]))
            assert await read_records(first, RecordSplitter(), 1) == [INTRO]
            await wait_until(lambda: events.got(bare_id) == [b"one"])
            second = await host.new_stream(ID.from_base58(trunk.peer_id), [TRUNK])
            await second.write(encode([INTRO, b"two"]))
            splitter = RecordSplitter()
            assert await read_records(second, splitter, 1) == [INTRO]
            await wait_until(lambda: events.got(bare_id) == [b"one", b"two"])
            with trio.fail_after(HANG_GUARD_S):
                await read_until_closed(first)
            assert trunk.send(bare_id, [b"reply"])
            assert await read_records(second, splitter, 1) == [b"reply"]
            assert events.events == [("up", bare_id)]
            # Each stream went through its own introduction.
            assert events.intros == [(bare_id, INTRO), (bare_id, INTRO)]
            nursery.cancel_scope.cancel()

    trio.run(main)


class SlowFirstDelivery(Recorder):
    """Blocks inside the first records call until `gate` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()
        self.inside = trio.Event()
        self.completed_calls = 0

    async def records(self, peer: str, records: list[bytes]) -> None:
        if not self.completed_calls:
            self.inside.set()
            await self.gate.wait()
        await super().records(peer, records)
        self.completed_calls += 1


def test_a_replaced_stream_lets_the_node_layer_finish_its_records_call_first() -> None:
    async def main() -> None:
        events = SlowFirstDelivery()
        trunk = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), events)
        async with trio.open_nursery() as nursery, bare_host() as host:
            addrs = await nursery.start(trunk.run)
            bare_id = str(host.get_id())
            await host.connect(info_from_p2p_addr(Multiaddr(addrs[0])))
            first = await host.new_stream(ID.from_base58(trunk.peer_id), [TRUNK])
            await first.write(encode([INTRO, b"one"]))
            with trio.fail_after(HANG_GUARD_S):
                await events.inside.wait()
            second = await host.new_stream(ID.from_base58(trunk.peer_id), [TRUNK])
            await second.write(encode([INTRO, b"two"]))
            assert await read_records(second, RecordSplitter(), 1) == [INTRO]
            await wait_until(lambda: trunk.stats()["streams_replaced"] == 1)
            assert events.got(bare_id) == []
            events.gate.set()
            await wait_until(lambda: events.got(bare_id) == [b"one", b"two"])
            assert events.completed_calls == 2
            assert events.events == [("up", bare_id)]
            nursery.cancel_scope.cancel()

    trio.run(main)


# ----- admission: the INTRO exchange -----


def test_a_listener_that_refuses_a_trunk_dialer_never_brings_the_trunk_up() -> None:
    async def main() -> None:
        a_events, b_events = Recorder(admits=False), Recorder()
        async with trio.open_nursery() as nursery:
            a = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), a_events)
            a_addrs = await nursery.start(a.run)
            b = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=a_addrs), b_events)
            await nursery.start(b.run)
            # The bootstrap dialer keeps trying; every try is refused the same way.
            await wait_until(lambda: a.stats()["admission_refused"] >= 2)
            assert a_events.intros[:2] == [(b.peer_id, INTRO), (b.peer_id, INTRO)]
            assert a_events.events == [] and a_events.received == {}
            # The dialer got no INTRO to decide on, and never saw the peer.
            assert b_events.intros == []
            assert b_events.events == [] and b_events.received == {}
            assert a.peers() == [] and b.peers() == []
            assert a.stats()["trunks_up"] == b.stats()["trunks_up"] == 0
            assert not b.send(a.peer_id, [b"nobody listens"])
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_refused_dialer_gets_no_intro_and_its_records_are_never_delivered() -> None:
    async def main() -> None:
        events = Recorder(admits=False)
        trunk = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), events)
        async with trio.open_nursery() as nursery, bare_host() as host:
            addrs = await nursery.start(trunk.run)
            bare_id = str(host.get_id())
            trunk_id = ID.from_base58(trunk.peer_id)
            await host.connect(info_from_p2p_addr(Multiaddr(addrs[0])))
            stream = await host.new_stream(trunk_id, [TRUNK])
            await stream.write(encode([INTRO, b"smuggled"]))
            with trio.fail_after(HANG_GUARD_S):
                _ending, answer = await drain(stream)
            assert answer == b"", "a refused dialer learned something from the listener"
            await wait_until(lambda: trunk.stats()["admission_refused"] == 1)
            assert events.intros == [(bare_id, INTRO)]
            assert events.events == [] and events.received == {}
            # The refusing side also closes the connection.
            await wait_until(lambda: host.get_network().get_connections(trunk_id) == [])
            assert trunk.peers() == []
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_dialer_that_refuses_the_listener_never_sees_it() -> None:
    async def main() -> None:
        a_events, b_events = Recorder(), Recorder(admits=False)
        async with trio.open_nursery() as nursery:
            a = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), a_events)
            a_addrs = await nursery.start(a.run)
            b = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=a_addrs), b_events)
            await nursery.start(b.run)
            await wait_until(lambda: b.stats()["admission_refused"] >= 2)
            assert b_events.intros[:2] == [(a.peer_id, INTRO), (a.peer_id, INTRO)]
            assert b_events.events == [] and b_events.received == {}
            assert b.peers() == []
            # The listener admitted the dialer and answered; it cannot know the dialer's
            # decision, so it may see the trunk come up, but every such trunk goes down
            # again and carries no record.
            await wait_until(lambda: a.peers() == [])
            assert a_events.received == {}
            ups = len(a_events.events) // 2
            assert a_events.events == [("up", b.peer_id), ("down", b.peer_id)] * ups
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_dialer_that_sends_no_intro_is_refused_after_the_intro_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(libp2p_trunk, "INTRO_TIMEOUT_S", 1.0)

    async def main() -> None:
        events = Recorder()
        trunk = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), events)
        async with trio.open_nursery() as nursery, bare_host() as host:
            addrs = await nursery.start(trunk.run)
            trunk_id = ID.from_base58(trunk.peer_id)
            await host.connect(info_from_p2p_addr(Multiaddr(addrs[0])))
            stream = await host.new_stream(trunk_id, [TRUNK])
            # Half a record header, then silence: still no INTRO.
            await stream.write(encode([INTRO])[:2])
            with trio.fail_after(HANG_GUARD_S):
                _ending, answer = await drain(stream)
            assert answer == b""
            await wait_until(lambda: trunk.stats()["intro_timeouts"] == 1)
            assert trunk.stats()["admission_refused"] == 1
            assert events.intros == [] and events.events == []
            await wait_until(lambda: host.get_network().get_connections(trunk_id) == [])
            assert trunk.peers() == []
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_listener_that_never_answers_the_intro_is_refused_after_the_intro_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(libp2p_trunk, "INTRO_TIMEOUT_S", 1.0)

    async def main() -> None:
        heard: list[list[bytes]] = []

        async def silent(stream: INetStream) -> None:
            heard.append(await read_records(stream, RecordSplitter(), 1))
            await read_until_closed(stream)

        events = Recorder()
        async with bare_host(handler=silent) as host, trio.open_nursery() as nursery:
            trunk = Trunk(
                settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[address_of(host)]), events
            )
            await nursery.start(trunk.run)
            await wait_until(lambda: trunk.stats()["intro_timeouts"] >= 1)
            assert trunk.stats()["admission_refused"] >= 1
            # The dialer spoke first, with its INTRO, and nothing else.
            assert heard[0] == [INTRO]
            assert events.intros == [] and events.events == []
            assert trunk.peers() == []
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_records_that_come_with_the_intro_in_one_read_then_a_bad_length() -> None:
    """Section 8: the complete records before a bad length are delivered, then reset."""

    async def main() -> None:
        events = Recorder()
        trunk = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), events)
        async with trio.open_nursery() as nursery, bare_host() as host:
            addrs = await nursery.start(trunk.run)
            peer = str(host.get_id())
            await host.connect(info_from_p2p_addr(Multiaddr(addrs[0])))
            stream = await host.new_stream(ID.from_base58(trunk.peer_id), [TRUNK])
            await stream.write(encode([INTRO, b"before"]) + struct.pack(">I", 0))
            with trio.fail_after(HANG_GUARD_S):
                await read_until_closed(stream)
            await wait_until(lambda: events.events == [("up", peer), ("down", peer)])
            assert events.got(peer) == [b"before"]
            assert trunk.stats()["protocol_errors"] == 1
            assert trunk.stats()["admission_refused"] == 0
            nursery.cancel_scope.cancel()

    trio.run(main)


# ----- slow readers and disconnect -----


def test_a_peer_that_stops_reading_fills_only_its_own_queue_and_is_disconnected() -> None:
    async def main() -> None:
        bound = 256 * 1024
        events = Recorder()
        other_events = Recorder()
        trunk = Trunk(
            TrunkSettings(
                seed=os.urandom(32),
                listen=["/ip4/127.0.0.1/tcp/0"],
                queue_bytes=bound,
                stall_timeout_s=1.0,
            ),
            events,
        )
        async with trio.open_nursery() as nursery, bare_host() as host:
            addrs = await nursery.start(trunk.run)
            other = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=addrs), other_events)
            await nursery.start(other.run)
            slow = str(host.get_id())
            await host.connect(info_from_p2p_addr(Multiaddr(addrs[0])))
            stream = await host.new_stream(ID.from_base58(trunk.peer_id), [TRUNK])
            # The slow peer completes the introduction, then never reads again.
            await introduce_as_dialer(stream)
            await wait_until(lambda: trunk.peers() == sorted([slow, other.peer_id]))

            # Keep offering records to the slow peer until the trunk gives up on it. Its
            # queue fills once its Yamux window is used up; from then on `send` refuses
            # at once. Each refusal, the other peer of the same trunk still gets its
            # records: one slow peer holds nobody up.
            record = b"s" * 65536
            accepted = refused = 0
            with trio.fail_after(HANG_GUARD_S):
                while slow in trunk.peers():
                    if trunk.send(slow, [record]):
                        accepted += 1
                    else:
                        refused += 1
                        assert trunk.stats()["queue_full"] == refused
                        assert trunk.peer_stats()[slow]["queued_bytes"] > bound
                        assert trunk.peer_stats()[slow]["drops"] == refused
                        assert trunk.send(other.peer_id, [b"%d" % refused])
                    await trio.sleep(0.01)
            assert accepted > 0 and refused > 0
            await wait_until(lambda: len(other_events.got(trunk.peer_id)) == refused)
            assert other_events.got(trunk.peer_id) == [b"%d" % i for i in range(1, refused + 1)]

            # No byte taken for the stall deadline: the slow peer is disconnected.
            await wait_until(lambda: ("down", slow) in events.events)
            assert trunk.stats()["stalls"] == 1
            assert trunk.stats()["link_errors"] == 0
            # The slow peer's stream ends (it finds what it had buffered, then EOF or reset).
            with trio.fail_after(HANG_GUARD_S):
                await drain(stream)
            assert trunk.peers() == [other.peer_id]
            assert slow not in trunk.peer_stats()
            assert not trunk.send(slow, [record])
            assert trunk.send(other.peer_id, [b"after the stall"])
            await wait_until(lambda: other_events.got(trunk.peer_id)[-1:] == [b"after the stall"])
            assert ("down", other.peer_id) not in events.events
            assert other_events.events == [("up", trunk.peer_id)]
            assert trunk.stats()["stalls"] == 1
            nursery.cancel_scope.cancel()

    trio.run(main)


class RefusesALaterIntro(Recorder):
    """A node layer that re-decides on every later INTRO and refuses `refused` ones."""

    def __init__(self, refused: bytes) -> None:
        super().__init__()
        self.refused = refused
        self.trunk: Trunk | None = None

    async def records(self, peer: str, records: list[bytes]) -> None:
        assert self.trunk is not None
        for i, record in enumerate(records):
            if record == self.refused:
                await super().records(peer, records[:i])
                self.trunk.disconnect(peer)
                return
        await super().records(peer, records)


def test_refusing_a_later_intro_with_disconnect_ends_the_trunk_with_peer_down() -> None:
    async def main() -> None:
        expired = Intro(roles=1).encode()
        events = RefusesALaterIntro(refused=expired)
        trunk = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), events)
        events.trunk = trunk
        async with trio.open_nursery() as nursery, bare_host() as host:
            addrs = await nursery.start(trunk.run)
            peer = str(host.get_id())
            await host.connect(info_from_p2p_addr(Multiaddr(addrs[0])))
            stream = await host.new_stream(ID.from_base58(trunk.peer_id), [TRUNK])
            await introduce_as_dialer(stream)
            await stream.write(encode([b"hello"]))
            await wait_until(lambda: events.got(peer) == [b"hello"])
            # Mid-stream, a new INTRO that the node no longer admits.
            await stream.write(encode([b"fine", expired, b"never delivered"]))
            with trio.fail_after(HANG_GUARD_S):
                await read_until_closed(stream)
            await wait_until(lambda: events.events == [("up", peer), ("down", peer)])
            assert events.got(peer) == [b"hello", b"fine"]
            assert trunk.peers() == []
            assert not trunk.send(peer, [b"gone"])
            trunk.disconnect(peer)  # no trunk: nothing happens
            assert events.events == [("up", peer), ("down", peer)]
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_disconnecting_a_bootstrap_peer_gives_peer_down_and_it_is_redialed() -> None:
    async def main() -> None:
        a_events, b_events = Recorder(), Recorder()
        async with trio.open_nursery() as nursery:
            a = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=[]), a_events)
            a_addrs = await nursery.start(a.run)
            b = Trunk(settings(listen="/ip4/127.0.0.1/tcp/0", bootstrap=a_addrs), b_events)
            await nursery.start(b.run)
            await wait_until(lambda: a.peers() == [b.peer_id] and b.peers() == [a.peer_id])

            b.disconnect(a.peer_id)
            up_down_up = [("up", a.peer_id), ("down", a.peer_id), ("up", a.peer_id)]
            await wait_until(lambda: b_events.events == up_down_up)
            await wait_until(lambda: a_events.events[-1:] == [("up", b.peer_id)])
            assert ("down", b.peer_id) in a_events.events
            assert b.stats()["reconnects"] == 1
            await wait_until(lambda: a.peers() == [b.peer_id] and b.peers() == [a.peer_id])
            assert b.send(a.peer_id, [b"after the redial"])
            await wait_until(lambda: a_events.got(b.peer_id) == [b"after the redial"])
            nursery.cancel_scope.cancel()

    trio.run(main)
