"""Record framing and splitting, the send queue, the redial backoff and trunk settings."""

from __future__ import annotations

import itertools
import random
import struct
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from peertap.sidecar.identity import generate
from peertap.sidecar.trunk import (
    MAX_RECORD,
    PROTOCOL_ID,
    Trunk,
    TrunkConfigError,
    TrunkNotRunningError,
    TrunkProtocolError,
    TrunkRecordError,
    TrunkSettings,
)
from peertap.sidecar.trunk.backoff import Backoff
from peertap.sidecar.trunk.records import RecordSplitter, encode
from peertap.sidecar.trunk.sendqueue import SendQueue, SendQueueClosed
from peertap.sidecar.wire import Intro

record_lists = st.lists(
    st.one_of(
        st.binary(min_size=1, max_size=64),
        st.integers(min_value=1, max_value=MAX_RECORD).map(lambda n: b"\xab" * n),
    ),
    max_size=20,
)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(records=record_lists, cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_splitter_returns_the_records_whatever_the_chunking(
    records: list[bytes], cuts: list[int]
) -> None:
    splitter = RecordSplitter()
    out: list[bytes] = []
    for chunk in split_at(encode(records), cuts):
        out += splitter.feed(chunk)
    assert out == records
    assert splitter.buffered == 0


@given(records=record_lists, cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_splitter_holds_back_no_more_than_the_unfinished_record(
    records: list[bytes], cuts: list[int]
) -> None:
    data = encode(records)
    splitter = RecordSplitter()
    consumed = 0
    boundaries = [0]
    for record in records:
        boundaries.append(boundaries[-1] + 4 + len(record))
    for chunk in split_at(data, cuts):
        splitter.feed(chunk)
        consumed += len(chunk)
        last_boundary = max(b for b in boundaries if b <= consumed)
        assert splitter.buffered == consumed - last_boundary


@pytest.mark.parametrize("length", [0, MAX_RECORD + 1, 2**32 - 1])
@given(prefix=record_lists, cuts=st.lists(st.integers(min_value=0), max_size=10))
def test_splitter_stops_at_a_zero_or_oversize_length_at_any_chunking(
    length: int, prefix: list[bytes], cuts: list[int]
) -> None:
    data = encode(prefix) + struct.pack(">I", length) + b"tail"
    splitter = RecordSplitter()
    out: list[bytes] = []
    for chunk in split_at(data, cuts):
        out += splitter.feed(chunk)
    assert out == prefix
    assert isinstance(splitter.error, TrunkProtocolError)
    assert splitter.error.length == length
    assert splitter.feed(encode([b"fine"])) == []


def test_splitter_without_a_bad_length_has_no_error() -> None:
    splitter = RecordSplitter()
    assert splitter.feed(encode([b"a", b"b"])[:7]) == [b"a"]
    assert splitter.error is None


@pytest.mark.parametrize("size", [0, MAX_RECORD + 1])
def test_encode_refuses_an_empty_or_oversize_record(size: int) -> None:
    with pytest.raises(TrunkRecordError):
        encode([b"ok", b"x" * size])


def test_encode_accepts_a_record_of_exactly_max_size() -> None:
    assert RecordSplitter().feed(encode([b"m" * MAX_RECORD])) == [b"m" * MAX_RECORD]


def test_send_queue_hands_the_writer_everything_queued_in_one_buffer() -> None:
    async def main() -> None:
        queue = SendQueue(1 << 20)
        assert queue.offer([b"a", b"bb"])
        assert queue.offer([b"ccc"])
        data, count = await queue.take()
        assert count == 3
        assert RecordSplitter().feed(data) == [b"a", b"bb", b"ccc"]
        assert queue.queued_bytes == 0

    trio.run(main)


def test_send_queue_refuses_without_waiting_while_over_its_bound() -> None:
    async def main() -> None:
        queue = SendQueue(100)
        # A batch larger than the bound is taken whole by an empty queue...
        assert queue.offer([b"x" * 200])
        assert queue.queued_bytes > 100
        # ...and while the queue is over its bound, offers are refused at once.
        assert not queue.offer([b"y"])
        assert not queue.offer([b"z"])
        _data, count = await queue.take()
        assert count == 1
        assert queue.offer([b"y"])
        data, count = await queue.take()
        assert (count, RecordSplitter().feed(data)) == (1, [b"y"])

    trio.run(main)


def test_a_send_queue_at_its_bound_still_takes_one_more_batch() -> None:
    queue = SendQueue(8)
    # 4 + 4 bytes: exactly at the bound, not over it.
    assert queue.offer([b"abcd"])
    assert queue.queued_bytes == 8
    assert queue.offer([b"e"])
    assert not queue.offer([b"f"])


def test_a_waiting_writer_wakes_up_for_an_offer() -> None:
    async def main() -> None:
        queue = SendQueue(100)
        taken: list[list[bytes]] = []

        async def writer() -> None:
            data, _count = await queue.take()
            taken.append(RecordSplitter().feed(data))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await trio.testing.wait_all_tasks_blocked()
            assert taken == []
            assert queue.offer([b"wake"])
        assert taken == [[b"wake"]]

    trio.run(main)


def test_closing_a_send_queue_releases_the_writer_and_counts_the_dropped() -> None:
    async def main() -> None:
        queue = SendQueue(10)
        assert queue.offer([b"x" * 20, b"y"])
        assert queue.close() == 2
        assert queue.closed
        assert queue.queued_bytes == 0
        with pytest.raises(SendQueueClosed):
            queue.offer([b"z"])
        with pytest.raises(SendQueueClosed):
            await queue.take()

        idle = SendQueue(10)
        outcome: list[str] = []

        async def writer() -> None:
            try:
                await idle.take()
            except SendQueueClosed:
                outcome.append("closed")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await trio.testing.wait_all_tasks_blocked()
            assert idle.close() == 0
        assert outcome == ["closed"]

    trio.run(main)


def test_backoff_grows_from_the_floor_to_the_ceiling_with_jitter_and_resets() -> None:
    backoff = Backoff(0.5, 30.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(20)]
    assert all(0.5 <= d <= 30.0 for d in delays)
    tops = [min(30.0, 0.5 * 2**n) for n in range(20)]
    assert all(d <= top for d, top in zip(delays, tops, strict=True))
    assert max(delays[10:]) > 1.0
    backoff.reset()
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize(
    "changes",
    [
        {"seed": b"short"},
        {"security": "plaintext"},
        {"reconnect_min_s": 0.0},
        {"reconnect_min_s": 5.0, "reconnect_max_s": 1.0},
        {"queue_bytes": 0},
        {"stall_timeout_s": 0.0},
        {"stall_timeout_s": -1.0},
    ],
)
def test_unusable_trunk_settings_are_refused(changes: dict[str, Any]) -> None:
    values: dict[str, Any] = {"seed": bytes(32), "listen": ["/ip4/127.0.0.1/tcp/0"]}
    values.update(changes)
    with pytest.raises(TrunkConfigError):
        TrunkSettings(**values)


@pytest.mark.parametrize(
    ("listen", "bootstrap"),
    [
        ("not a multiaddr", []),
        ("/ip4/127.0.0.1/tcp/0", ["/ip4/127.0.0.1/tcp/4001"]),
        ("/ip4/127.0.0.1/tcp/0", ["/ip4/127.0.0.1/tcp/4001/p2p/not-a-peer-id"]),
    ],
)
def test_bad_listen_or_bootstrap_addresses_are_refused(listen: str, bootstrap: list[str]) -> None:
    settings = TrunkSettings(seed=bytes(32), listen=[listen], bootstrap=bootstrap)
    with pytest.raises(TrunkConfigError):
        Trunk(settings, _NoEvents())


def test_the_trunk_peer_id_is_the_identity_peer_id_of_the_same_seed() -> None:
    identity = generate()
    trunk = Trunk(TrunkSettings(seed=identity.seed, listen=[]), _NoEvents())
    assert trunk.peer_id == identity.peer_id
    with pytest.raises(TrunkNotRunningError):
        trunk.listen_addrs()


def test_the_trunk_protocol_id_is_version_2() -> None:
    assert PROTOCOL_ID == "/peertap/trunk/2.0.0"


class _NoEvents:
    def intro(self) -> bytes:
        return Intro().encode()

    def admit(self, peer: str, intro: bytes) -> bool:
        return True

    async def peer_up(self, peer: str) -> None:
        pass

    async def peer_down(self, peer: str) -> None:
        pass

    async def records(self, peer: str, records: list[bytes]) -> None:
        pass
