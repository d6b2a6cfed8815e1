"""Two Trunk instances in one trio run: records, batching, transports, security."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest
import trio

from peertap.sidecar.trunk import Trunk, TrunkSettings
from peertap.sidecar.wire import Intro

HANG_GUARD_S = 60.0
"""Upper bound on any wait in these tests: it only turns a hang into a failure."""

LOOPBACK_TCP = "/ip4/127.0.0.1/tcp/0"
LOOPBACK_WS = "/ip4/127.0.0.1/tcp/0/ws"


INTRO = Intro().encode()


class Recorder:
    """TrunkEvents that admit every peer and remember everything, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.received: dict[str, list[bytes]] = {}
        self.batches = 0
        self.admitted: list[str] = []

    def intro(self) -> bytes:
        return INTRO

    def admit(self, peer: str, intro: bytes) -> bool:
        # Every stream is introduced, so a second stream (simultaneous open, replacement)
        # is decided on while the peer is up; only the first record is an INTRO.
        assert intro == INTRO, "the first record is not the peer's INTRO"
        self.admitted.append(peer)
        return True

    async def peer_up(self, peer: str) -> None:
        self.events.append(("up", peer))

    async def peer_down(self, peer: str) -> None:
        self.events.append(("down", peer))

    async def records(self, peer: str, records: list[bytes]) -> None:
        assert self.events and self.events[-1] == ("up", peer), "records outside up..down"
        self.batches += 1
        self.received.setdefault(peer, []).extend(records)

    def count(self, kind: str, peer: str) -> int:
        return self.events.count((kind, peer))

    def got(self, peer: str) -> list[bytes]:
        return self.received.get(peer, [])


def settings(
    *,
    seed: bytes | None = None,
    listen: str = LOOPBACK_TCP,
    bootstrap: list[str] | None = None,
    security: str = "noise",
    queue_bytes: int = 4 * 1024 * 1024,
    stall_timeout_s: float = 15.0,
) -> TrunkSettings:
    assert security in ("noise", "tls")
    return TrunkSettings(
        seed=seed or os.urandom(32),
        listen=[listen],
        bootstrap=bootstrap or [],
        security="tls" if security == "tls" else "noise",
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
        queue_bytes=queue_bytes,
        stall_timeout_s=stall_timeout_s,
    )


async def wait_until(predicate: Callable[[], bool]) -> None:
    with trio.fail_after(HANG_GUARD_S):
        while not predicate():
            await trio.sleep(0.01)


async def start_trunk(
    nursery: trio.Nursery, config: TrunkSettings, events: Recorder | None = None
) -> tuple[Trunk, Recorder, list[str]]:
    recorder = events or Recorder()
    trunk = Trunk(config, recorder)
    addrs: list[str] = await nursery.start(trunk.run)
    return trunk, recorder, addrs


def numbered(count: int, size: int, *, start: int = 0) -> list[bytes]:
    """Records that say their own sequence number, padded to `size` bytes."""
    return [
        (start + i).to_bytes(8, "big") + bytes([(start + i) % 251]) * (size - 8)
        for i in range(count)
    ]


@pytest.mark.parametrize("security", ["noise", "tls"])
def test_records_cross_both_ways_in_order(security: str) -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            a, a_events, a_addrs = await start_trunk(nursery, settings(security=security))
            b, b_events, _ = await start_trunk(
                nursery, settings(security=security, bootstrap=[a_addrs[0]])
            )
            await wait_until(lambda: a.peers() == [b.peer_id] and b.peers() == [a.peer_id])
            assert a_events.events == [("up", b.peer_id)]
            assert b_events.events == [("up", a.peer_id)]
            # Each side decided once on the other's INTRO before its peer_up.
            assert a_events.admitted == [b.peer_id]
            assert b_events.admitted == [a.peer_id]

            to_a = numbered(50, 1500)
            to_b = numbered(50, 65535 + 512)
            for i in range(0, 50, 10):
                assert b.send(a.peer_id, to_a[i : i + 10])
                assert a.send(b.peer_id, to_b[i : i + 10])
            await wait_until(lambda: len(a_events.got(b.peer_id)) == 50)
            await wait_until(lambda: len(b_events.got(a.peer_id)) == 50)
            assert a_events.got(b.peer_id) == to_a
            assert b_events.got(a.peer_id) == to_b
            assert a.stats()["records_received"] == b.stats()["records_sent"] == 50
            assert b.stats()["bytes_received"] == a.stats()["bytes_sent"] == 50 * (65535 + 512)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_many_small_records_arrive_intact_in_order_packed_into_few_writes() -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            a, a_events, a_addrs = await start_trunk(nursery, settings())
            b, _, _ = await start_trunk(nursery, settings(bootstrap=[a_addrs[0]]))
            await wait_until(lambda: b.peers() == [a.peer_id] and a.peers() == [b.peer_id])

            sent = numbered(20_000, 64)
            for i, record in enumerate(sent):
                assert b.send(a.peer_id, [record])
                if i % 100 == 0:
                    await trio.sleep(0)  # let the writer run while sends go on
            await wait_until(lambda: len(a_events.got(b.peer_id)) == len(sent))
            assert a_events.got(b.peer_id) == sent

            stats = b.stats()
            assert stats["records_sent"] == len(sent)
            # One send per record, yet the writer drained the queue in batches.
            assert stats["writes"] * 10 <= stats["records_sent"]
            assert a.stats()["reads"] < len(sent)
            assert a_events.batches < len(sent)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_one_send_of_many_records_goes_out_as_one_write() -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            a, a_events, a_addrs = await start_trunk(nursery, settings())
            b, _, _ = await start_trunk(nursery, settings(bootstrap=[a_addrs[0]]))
            await wait_until(lambda: b.peers() == [a.peer_id] and a.peers() == [b.peer_id])
            before = b.stats()["writes"]
            batch = numbered(500, 1500)
            assert b.send(a.peer_id, batch)
            await wait_until(lambda: len(a_events.got(b.peer_id)) == 500)
            assert b.stats()["writes"] - before == 1
            assert a_events.got(b.peer_id) == batch
            nursery.cancel_scope.cancel()

    trio.run(main)


class GatedRecorder(Recorder):
    """Holds every delivery until `gate` is set: a node layer that stopped reading."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()

    async def records(self, peer: str, records: list[bytes]) -> None:
        await self.gate.wait()
        await super().records(peer, records)


async def fill_until_refused(trunk: Trunk, peer: str, size: int) -> list[bytes]:
    """Send numbered records to `peer` one by one until `send` refuses one.

    Yields between sends so the writer can drain the queue into the stream; the
    queue only stays over its bound once the peer stops taking bytes. Returns the
    records `send` accepted, in order.
    """
    accepted: list[bytes] = []
    with trio.fail_after(HANG_GUARD_S):
        while True:
            record = numbered(1, size, start=len(accepted))[0]
            if not trunk.send(peer, [record]):
                return accepted
            accepted.append(record)
            await trio.sleep(0)


def test_a_receiver_that_stops_reading_makes_send_refuse_and_nothing_accepted_is_lost() -> None:
    async def main() -> None:
        receiver_events = GatedRecorder()
        bound = 256 * 1024
        async with trio.open_nursery() as nursery:
            a, _, a_addrs = await start_trunk(nursery, settings(), receiver_events)
            b, b_events, _ = await start_trunk(
                nursery,
                # No stall disconnect during the test: only the queue bound acts.
                settings(bootstrap=[a_addrs[0]], queue_bytes=bound, stall_timeout_s=HANG_GUARD_S),
            )
            await wait_until(lambda: b.peers() == [a.peer_id] and a.peers() == [b.peer_id])

            # The queue only exceeds its bound when the writer cannot drain it; then
            # `send` refuses instead of waiting.
            accepted = await fill_until_refused(b, a.peer_id, 65536)
            assert accepted
            assert b.stats()["queued_bytes"] > bound
            assert b.peer_stats()[a.peer_id]["queued_bytes"] > bound
            refused = [b"refused"] * 3
            assert not b.send(a.peer_id, refused)
            stats = b.stats()
            assert stats["queue_full"] == 1 + len(refused)
            assert stats["drops"] == 1 + len(refused)
            assert b.peer_stats()[a.peer_id]["drops"] == 1 + len(refused)

            receiver_events.gate.set()
            await wait_until(lambda: len(receiver_events.got(b.peer_id)) == len(accepted))
            assert receiver_events.got(b.peer_id) == accepted
            # The queue drained: the trunk takes records again.
            await wait_until(lambda: b.stats()["queued_bytes"] == 0)
            assert b.send(a.peer_id, [b"again"])
            await wait_until(lambda: receiver_events.got(b.peer_id)[-1:] == [b"again"])
            assert b.stats()["drops"] == 1 + len(refused)
            assert b.stats()["trunks_down"] == 0
            assert b.stats()["stalls"] == 0
            assert b_events.events == [("up", a.peer_id)]
            nursery.cancel_scope.cancel()

    trio.run(main)


YAMUX_WINDOW_TIMEOUT_S = 5.0
"""py-libp2p's Yamux writer gives up after this long without send window."""


@pytest.mark.slow
def test_a_receiver_stalled_longer_than_the_yamux_timeout_keeps_its_trunk() -> None:
    async def main() -> None:
        receiver_events = GatedRecorder()
        async with trio.open_nursery() as nursery:
            a, _, a_addrs = await start_trunk(nursery, settings(), receiver_events)
            b, b_events, _ = await start_trunk(
                nursery,
                # The trunk's own stall deadline is well past Yamux's give-up time.
                settings(bootstrap=[a_addrs[0]], stall_timeout_s=6 * YAMUX_WINDOW_TIMEOUT_S),
            )
            await wait_until(lambda: b.peers() == [a.peer_id] and a.peers() == [b.peer_id])
            accepted = await fill_until_refused(b, a.peer_id, 65536)
            assert b.stats()["queued_bytes"] > 0
            # Not a threshold: the stall only has to outlast Yamux's give-up time.
            await trio.sleep(YAMUX_WINDOW_TIMEOUT_S + 1.0)
            receiver_events.gate.set()
            await wait_until(lambda: len(receiver_events.got(b.peer_id)) == len(accepted))
            assert receiver_events.got(b.peer_id) == accepted
            assert b_events.events == [("up", a.peer_id)]
            assert b.stats()["drops"] == b.stats()["queue_full"] == 1
            assert b.stats()["stalls"] == 0
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_websocket_trunk_carries_records() -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            a, a_events, a_addrs = await start_trunk(nursery, settings(listen=LOOPBACK_WS))
            assert all("/ws/" in addr for addr in a_addrs)
            b, b_events, _ = await start_trunk(
                nursery, settings(listen=LOOPBACK_TCP, bootstrap=[a_addrs[0]])
            )
            await wait_until(lambda: b.peers() == [a.peer_id] and a.peers() == [b.peer_id])
            records = numbered(100, 9000)
            assert b.send(a.peer_id, records)
            assert a.send(b.peer_id, records[:3])
            await wait_until(lambda: len(a_events.got(b.peer_id)) == 100)
            await wait_until(lambda: len(b_events.got(a.peer_id)) == 3)
            assert a_events.got(b.peer_id) == records
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_send_to_a_peer_without_trunk_returns_false_and_counts_a_drop() -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            a, _, _ = await start_trunk(nursery, settings())
            other = Trunk(settings(), _Ignore())
            assert not a.send(other.peer_id, [b"one", b"two"])
            assert a.stats()["drops"] == 2
            assert a.peers() == []
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_peers_that_bootstrap_to_each_other_end_with_one_working_trunk() -> None:
    seed_a, seed_b = os.urandom(32), os.urandom(32)
    port_a, port_b = _free_port(), _free_port()
    id_a = Trunk(settings(seed=seed_a), _Ignore()).peer_id
    id_b = Trunk(settings(seed=seed_b), _Ignore()).peer_id
    config_a = settings(
        seed=seed_a,
        listen=f"/ip4/127.0.0.1/tcp/{port_a}",
        bootstrap=[f"/ip4/127.0.0.1/tcp/{port_b}/p2p/{id_b}"],
    )
    config_b = settings(
        seed=seed_b,
        listen=f"/ip4/127.0.0.1/tcp/{port_b}",
        bootstrap=[f"/ip4/127.0.0.1/tcp/{port_a}/p2p/{id_a}"],
    )

    async def main() -> None:
        a_events, b_events = Recorder(), Recorder()
        a, b = Trunk(config_a, a_events), Trunk(config_b, b_events)
        async with trio.open_nursery() as nursery:
            # Both start dialing the other at once: two streams, one survives.
            nursery.start_soon(a.run)
            nursery.start_soon(b.run)
            await wait_until(lambda: b.peers() == [id_a] and a.peers() == [id_b])
            # Records sent while the losing stream is torn down may be lost, as
            # frames on a link that goes down: probe until both directions work.
            with trio.fail_after(HANG_GUARD_S):
                while not (a_events.got(id_b) and b_events.got(id_a)):
                    a.send(id_b, [b"probe"])
                    b.send(id_a, [b"probe"])
                    await trio.sleep(0.05)
            to_a, to_b = numbered(200, 1500), numbered(200, 700, start=1000)
            for i in range(0, 200, 20):
                assert b.send(id_a, to_b[i : i + 20])
                assert a.send(id_b, to_a[i : i + 20])
            await wait_until(lambda: len(a_events.got(id_b)) >= 200)
            await wait_until(lambda: len(b_events.got(id_a)) >= 200)
            assert a_events.got(id_b)[-200:] == to_b
            assert b_events.got(id_a)[-200:] == to_a
            assert a_events.events[-1] == ("up", id_b)
            assert b_events.events[-1] == ("up", id_a)
            nursery.cancel_scope.cancel()

    trio.run(main)


class _Ignore:
    def intro(self) -> bytes:
        return INTRO

    def admit(self, peer: str, intro: bytes) -> bool:
        return True

    async def peer_up(self, peer: str) -> None:
        pass

    async def peer_down(self, peer: str) -> None:
        pass

    async def records(self, peer: str, records: list[bytes]) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
