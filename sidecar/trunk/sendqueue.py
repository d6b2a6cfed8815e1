"""Per-peer send queue: framed records waiting for the peer's writer task.

Senders wait while the queue holds more than its byte bound (backpressure); the
writer takes everything queued at once so that one stream write carries many
records. Records are framed on the way in, so taking is one `b"".join`.
"""

from __future__ import annotations

import trio

from .records import HEADER_SIZE, frame_parts


class SendQueueClosed(Exception):
    """The queue's trunk is gone; nothing more is taken from it."""


class SendQueue:
    __slots__ = ("_closed", "_limit", "_not_empty", "_not_full", "_parts", "_queued_bytes")

    def __init__(self, limit_bytes: int) -> None:
        self._limit = limit_bytes
        self._parts: list[bytes] = []
        self._queued_bytes = 0
        self._closed = False
        self._not_empty = trio.lowlevel.ParkingLot()
        self._not_full = trio.lowlevel.ParkingLot()

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    @property
    def closed(self) -> bool:
        return self._closed

    async def put(self, records: list[bytes]) -> None:
        """Queue `records`, first waiting while the queue is over its bound.

        A batch is taken whole even if it overshoots the bound, so a batch larger
        than the bound cannot wait forever. Raises SendQueueClosed once closed.
        It does not yield when there is room: a producer that queues several
        records in a row without other awaits gets them all into one write.
        """
        parts = frame_parts(records)
        while self._queued_bytes > self._limit and not self._closed:
            await self._not_full.park()
        if self._closed:
            raise SendQueueClosed
        self._parts += parts
        self._queued_bytes += sum(map(len, records)) + HEADER_SIZE * len(records)
        self._not_empty.unpark_all()

    async def take(self) -> tuple[bytes, int]:
        """Everything queued as one buffer, and how many records it holds.

        After waking up it lets the other runnable tasks go first, so producers
        woken in the same scheduler pass add their records to this batch.
        """
        while not self._parts:
            if self._closed:
                raise SendQueueClosed
            await self._not_empty.park()
            await trio.sleep(0)
        parts = self._parts
        self._parts = []
        self._queued_bytes = 0
        self._not_full.unpark_all()
        return b"".join(parts), len(parts) // 2

    def close(self) -> int:
        """Wake everyone waiting; return how many queued records are dropped."""
        dropped = len(self._parts) // 2
        self._closed = True
        self._parts = []
        self._queued_bytes = 0
        self._not_full.unpark_all()
        self._not_empty.unpark_all()
        return dropped
