"""A trunk node in its own process that sends every record back to its sender.

Started by test_trunk_processes.py: prints one JSON line with its peer id and
listen addresses, then serves until killed.
"""

from __future__ import annotations

import argparse
import json

import trio

from peertap.sidecar.trunk import Trunk, TrunkSettings
from peertap.sidecar.wire import Intro

QUEUE_BYTES = TrunkSettings(seed=bytes(32), listen=[]).queue_bytes


class Echo:
    def __init__(self) -> None:
        self.trunk: Trunk | None = None

    def intro(self) -> bytes:
        return Intro().encode()

    def admit(self, peer: str, intro: bytes) -> bool:
        return intro == Intro().encode()

    async def peer_up(self, peer: str) -> None:
        pass

    async def peer_down(self, peer: str) -> None:
        pass

    async def records(self, peer: str, records: list[bytes]) -> None:
        trunk = self.trunk
        assert trunk is not None
        # `send` never waits; the echo waits for room itself (its receive backpressure),
        # so that it loses nothing. A record it still drops is missing on the test side.
        while peer in trunk.peers() and trunk.peer_stats()[peer]["queued_bytes"] > QUEUE_BYTES:
            await trio.sleep(0.005)
        trunk.send(peer, records)


async def serve(seed: bytes, listen: str) -> None:
    echo = Echo()
    trunk = Trunk(TrunkSettings(seed=seed, listen=[listen], bootstrap=[]), echo)
    echo.trunk = trunk
    async with trio.open_nursery() as nursery:
        addrs = await nursery.start(trunk.run)
        print(json.dumps({"peer_id": trunk.peer_id, "addrs": addrs}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed-hex", required=True)
    parser.add_argument("--listen", required=True)
    args = parser.parse_args()
    trio.run(serve, bytes.fromhex(args.seed_hex), args.listen)


if __name__ == "__main__":
    main()
