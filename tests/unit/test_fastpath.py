"""The fast path's threads on real UDP sockets (loopback) beside a real trio loop.

Two datagram channels whose receive runs on the fast-path thread (FastPath), their PATH
records crossing in memory as the trunk stream would carry them: DATA sealed on a
fast-path thread arrives on the peer's fast-path thread, the sessions rekey every 0.6 s and
traffic under each new key keeps flowing through it, a datagram under a session
that was retired is refused (`unknown_session`), and forged and replayed datagrams
under the live session are refused and counted, never delivered."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import trio
from datagram_links import A_ID, B_ID, link_and_wait

from peertap.sidecar import wire
from peertap.sidecar.counters import Counters
from peertap.sidecar.datagram import codec
from peertap.sidecar.datagram.channel import DatagramChannel
from peertap.sidecar.datagram.session import SendSession
from peertap.sidecar.fastpath import FastPath


def data_packet(tag: int, size: int = 200) -> bytes:
    body = tag.to_bytes(4, "big") + bytes(size - 4)
    return bytes([wire.VERSION, wire.TYPE_DATA, 8, 0]) + body


def test_fast_path_threads_carry_data_across_rekeys_and_refuse_old_forged_replayed() -> None:
    trio.run(_scenario)


async def _scenario() -> None:
    a = DatagramChannel(own_id=A_ID, host="127.0.0.1", rekey_after_s=0.6)
    b = DatagramChannel(own_id=B_ID, host="127.0.0.1", rekey_after_s=0.6)
    a.open(), b.open()
    fast_a = FastPath(channel=a, trunk_send=lambda p, r: False, counters=Counters())
    fast_b = FastPath(channel=b, trunk_send=lambda p, r: False, counters=Counters())
    got: list[bytes] = []
    receiving_threads: set[str] = set()

    def deliver_b(peer: str, records: list[bytes]) -> None:
        receiving_threads.add(threading.current_thread().name)
        got.extend(records)

    async def wait_for(check: Callable[[], bool], seconds: float = 20.0) -> None:
        with trio.fail_after(seconds):
            while not check():
                await trio.sleep(0.02)

    def send_from_thread(packets: list[bytes]) -> bool:
        # As a TAP thread does: seal and send with the loop lock held, off the trio thread.
        with fast_a.loop_lock.lock:
            return fast_a.send("b", packets)

    spy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        async with trio.open_nursery() as nursery:
            fast_a.start(lambda peer, records: None)
            fast_b.start(deliver_b)
            await link_and_wait(nursery, a, b, None, None)

            sessions_seen: list[SendSession] = []
            sent: list[bytes] = []
            tag = 0
            # Three keys in a row: each carries DATA sealed on a thread, delivered by b's
            # UDP thread.
            while len(sessions_seen) < 3:
                state = a._peers["b"]
                session = state.send_session
                if session is not None and session not in sessions_seen:
                    sessions_seen.append(session)
                    packets = [data_packet(tag + i) for i in range(5)]
                    tag += 5
                    assert await trio.to_thread.run_sync(send_from_thread, packets)
                    sent.extend(packets)
                    await wait_for(lambda: len(got) >= len(sent))
                await trio.sleep(0.05)
            assert got == sent
            assert receiving_threads == {"peertap-fastpath"}

            # The first session has been retired by b (two rekeys since): refused.
            before = dict(b.counters)
            old = sessions_seen[0].seal(codec.KIND_DATA, codec.pack_records([data_packet(999)]))
            spy.sendto(old, ("127.0.0.1", b.port))
            await wait_for(lambda: b.counters["unknown_session"] > before.get("unknown_session", 0))

            # A datagram under the live session, then a forged copy and a replay of it.
            current = a._peers["b"].send_session
            assert current is not None
            genuine = current.seal(codec.KIND_DATA, codec.pack_records([data_packet(1000)]))
            forged = bytearray(genuine)
            forged[-1] ^= 1
            spy.sendto(bytes(forged), ("127.0.0.1", b.port))
            await wait_for(lambda: b.counters["auth"] > before.get("auth", 0))
            spy.sendto(genuine, ("127.0.0.1", b.port))
            await wait_for(lambda: len(got) == len(sent) + 1)
            spy.sendto(genuine, ("127.0.0.1", b.port))
            await wait_for(lambda: b.counters["replay"] > before.get("replay", 0))
            assert got[-1] == data_packet(1000)
            assert got.count(data_packet(1000)) == 1

            sources = fast_b.status()["sources"]
            assert sources["udp"]["batches"] > 0 and sources["udp"]["errors"] == 0
            await fast_a.stop()
            await fast_b.stop()
            nursery.cancel_scope.cancel()
    finally:
        spy.close()
        a.close(), b.close()
    assert b.counters["sessions_received"] >= 3
