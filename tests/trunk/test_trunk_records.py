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
        await queue.put([b"a", b"bb"])
        await queue.put([b"ccc"])
        data, count = await queue.take()
        assert count == 3
        assert RecordSplitter().feed(data) == [b"a", b"bb", b"ccc"]
        assert queue.queued_bytes == 0

    trio.run(main)


def test_send_queue_makes_senders_wait_while_over_its_bound() -> None:
    async def main() -> None:
        queue = SendQueue(100)
        await queue.put([b"x" * 200])
        finished: list[str] = []

        async def second_sender() -> None:
            await queue.put([b"y"])
            finished.append("second")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(second_sender)
            await trio.testing.wait_all_tasks_blocked()
            assert finished == []
            _data, count = await queue.take()
            assert count == 1
            await trio.testing.wait_all_tasks_blocked()
            assert finished == ["second"]
        assert (await queue.take())[1] == 1

    trio.run(main)


def test_closing_a_send_queue_releases_waiting_senders_and_counts_the_dropped() -> None:
    async def main() -> None:
        queue = SendQueue(10)
        await queue.put([b"x" * 20, b"y"])
        outcome: list[str] = []

        async def blocked_sender() -> None:
            try:
                await queue.put([b"z"])
            except SendQueueClosed:
                outcome.append("closed")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(blocked_sender)
            await trio.testing.wait_all_tasks_blocked()
            assert queue.close() == 2
        assert outcome == ["closed"]
        with pytest.raises(SendQueueClosed):
            await queue.take()

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


class _NoEvents:
    async def peer_up(self, peer: str) -> None:
        pass

    async def peer_down(self, peer: str) -> None:
        pass

    async def records(self, peer: str, records: list[bytes]) -> None:
        pass
