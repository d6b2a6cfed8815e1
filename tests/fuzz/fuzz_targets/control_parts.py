"""PARTs of large CONTROL messages: `private.messages.Part.decode` and
`private.chunks.Reassembler`.

Input: records, each a u16 length then that many bytes: a signer selector (u8) and a
PART body. Every record is decoded and handed to one Reassembler, as a member does
with the PARTs it receives from several signers. Asserts that decoding raises nothing
but MalformedControl, that decoded PARTs encode back to the same bytes, that the bytes
held for unfinished messages never exceed chunks.MAX_PENDING_BYTES, and that every
message handed out hashes to the message id its PARTs named.
"""

from __future__ import annotations

import struct

from peertap.sidecar.counters import Counters
from peertap.sidecar.private import chunks
from peertap.sidecar.private import messages as m

NAME = "control_parts"
_SIGNERS = [bytes([i]) * 32 for i in range(3)]


def _records(parts: list[tuple[int, bytes]]) -> bytes:
    return b"".join(struct.pack(">H", len(b) + 1) + bytes([s]) + b for s, b in parts)


def seeds() -> list[bytes]:
    body = bytes(range(256)) * 40
    whole = chunks.split(m.WELCOME, body, part_data=3000, max_body=3000)
    other = chunks.split(m.COMMIT, body[:7000], part_data=2500, max_body=2500)
    return [
        _records([(0, b) for _, b in whole]),
        _records([(0, b) for _, b in reversed(whole)]),
        _records([(0, whole[0][1]), (1, other[0][1]), (0, whole[1][1]), (1, other[1][1])]),
        _records([(2, b) for _, b in other] + [(2, other[0][1])]),
    ]


def check(data: bytes) -> None:
    r = chunks.Reassembler(counters=Counters())
    pos = 0
    while pos + 2 <= len(data):
        (size,) = struct.unpack_from(">H", data, pos)
        record = data[pos + 2 : pos + 2 + size]
        pos += 2 + size
        if not record:
            continue
        signer = _SIGNERS[record[0] % len(_SIGNERS)]
        try:
            part = m.Part.decode(record[1:])
        except m.MalformedControl:
            continue
        assert part.encode() == record[1:]
        whole = r.add(signer, part)
        assert r.pending_bytes <= chunks.MAX_PENDING_BYTES
        if whole is not None:
            kind, body = whole
            assert m.message_id(kind, body) == part.message_id
