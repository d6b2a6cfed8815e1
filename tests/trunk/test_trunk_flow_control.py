"""A trunk peer that ignores Yamux flow control cannot fill the receiver's memory.

The attacker is a real Trunk whose Yamux stream pretends to have an endless send window,
so its writer pushes everything it has queued; the receiver's node layer has stopped
reading. py-libp2p alone would buffer all of it; the receiver cuts the stream off at its
granted window (sidecar/trunk/host.py) and counts it."""

from __future__ import annotations

import trio
from test_trunk_links import (
    HANG_GUARD_S,
    GatedRecorder,
    numbered,
    settings,
    start_trunk,
    wait_until,
)

from peertap.sidecar.trunk import Trunk
from peertap.sidecar.trunk.host import RECEIVE_SLACK
from peertap.sidecar.trunk.libp2p_trunk import RECEIVE_WINDOW

RECORD = 60_000
ATTACK_BYTES = 3 * RECEIVE_WINDOW


def receive_buffers(trunk: Trunk) -> list[int]:
    """Sizes of the receiver's Yamux stream buffers, on every connection it has."""
    host = trunk._host
    assert host is not None
    sizes = []
    for conns in host.get_network().get_connections_map().values():
        for conn in conns:
            buffers = getattr(conn.muxed_conn, "stream_buffers", {})
            sizes += [len(b) for b in buffers.values()]
    return sizes


def test_a_peer_sending_past_its_receive_window_is_cut_off_and_counted() -> None:
    async def main() -> None:
        receiver_events = GatedRecorder()  # its node layer stopped reading
        async with trio.open_nursery() as nursery:
            receiver, _, addrs = await start_trunk(nursery, settings(), receiver_events)
            before = receiver.stats()["window_violations"]
            attacker, _, _ = await start_trunk(
                nursery,
                settings(
                    bootstrap=[addrs[0]],
                    queue_bytes=2 * ATTACK_BYTES,
                    stall_timeout_s=HANG_GUARD_S,
                ),
            )
            await wait_until(lambda: attacker.peers() == [receiver.peer_id])
            # The attacker's stream believes the receiver granted it an endless window.
            muxed = attacker._links[receiver.peer_id].stream.muxed_stream  # type: ignore[attr-defined]
            muxed.send_window = 1 << 40
            assert attacker.send(receiver.peer_id, numbered(ATTACK_BYTES // RECORD, RECORD))
            muxed.send_window = 1 << 40
            await wait_until(lambda: receiver.stats()["window_violations"] > before)
            # Nothing past the granted window was kept while the node layer was stuck.
            assert max(receive_buffers(receiver), default=0) <= RECEIVE_WINDOW + RECEIVE_SLACK
            assert sum(receive_buffers(receiver)) < ATTACK_BYTES
            # Once the node layer reads again, the receiver drops the stream it cut off.
            receiver_events.gate.set()
            await wait_until(lambda: receiver.stats()["trunks_down"] >= 1)
            nursery.cancel_scope.cancel()

    trio.run(main)
