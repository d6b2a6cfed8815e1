"""Per-peer send queue: framed records waiting for the peer's writer task.

A sender never waits: records that would take the queue past its byte bound are
refused (the trunk counts them dropped, as a switch port drops on a full queue),
so one slow peer cannot hold up traffic to the others. The writer takes everything
queued at once so that one stream write carries many records. Records are framed
on the way in, so taking is one `b"".join`.
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

    @property
    def full(self) -> bool:
        return self._queued_bytes > self._limit

    async def wait_room(self) -> None:
        """Until the writer took what is queued (or the queue closed)."""
        while self._queued_bytes > self._limit and not self._closed:
            await self._not_full.park()

    def offer(self, records: list[bytes]) -> bool:
        """Queue `records` unless the queue already holds more than its bound.

        A batch is taken whole even if it overshoots the bound, so a batch larger
        than the bound is never refused by an empty queue. Raises SendQueueClosed
        once closed. Producers that queue several batches in a row without awaiting
        get them all into one write.
        """
        if self._closed:
            raise SendQueueClosed
        if self._queued_bytes > self._limit:
            return False
        self._parts += frame_parts(records)
        self._queued_bytes += sum(map(len, records)) + HEADER_SIZE * len(records)
        self._not_empty.unpark_all()
        return True

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
        self._not_empty.unpark_all()
        self._not_full.unpark_all()
        return dropped
