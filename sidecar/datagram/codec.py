"""Wire formats of the datagram path (docs/protocol.md, section 8b).

Two kinds of bytes are defined here:

- UDP datagrams between two peers: a 20-byte header, then AES-256-GCM ciphertext and
  tag (a whole datagram), or one piece of a record sealed as a whole (a fragment). The
  header names the receiver's session (chosen by the sender and keyed over the trunk
  stream), carries a per-session counter (the nonce) and the fragment position; it is
  the associated data of a whole datagram, and fragment 0's header is that of a sealed
  record.
- PATH records (packet type 6) on the trunk stream: OFFER, KEY and ACK, the key
  exchange that sets up datagram sessions. They ride inside the Noise-encrypted,
  peer-authenticated trunk stream.

Parsers raise MalformedDatagram (with a short counter label), never anything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .. import wire

VERSION = 2
KIND_DATA = 1
KIND_PROBE = 2
KIND_PROBE_REPLY = 3
KINDS = (KIND_DATA, KIND_PROBE, KIND_PROBE_REPLY)

HEADER_LEN = 20
TAG_LEN = 16
OVERHEAD = HEADER_LEN + TAG_LEN
"""Bytes a datagram adds to what it carries."""
MAX_FRAGMENTS = 255
LENGTH_LEN = 2
"""Each record packed into a whole (unfragmented) DATA datagram has a u16 length."""
MAX_DATAGRAM = 65507
"""Largest UDP payload over IPv4."""

_HEADER = struct.Struct(">BBBBQQ")
pack_header = _HEADER.pack
unpack_header = _HEADER.unpack_from
"""Hot-path forms of the header: (version, kind, index, count, session, counter)."""
_NONCE = struct.Struct(">4xQ")
nonce = _NONCE.pack
_LENGTH = struct.Struct(">H")
_PROBE = struct.Struct(">QQ")
_PROBE_REPLY = struct.Struct(">QQH")
PROBE_LEN = _PROBE.size
PROBE_REPLY_LEN = _PROBE_REPLY.size


class MalformedDatagram(ValueError):
    """Bytes that do not follow the datagram or PATH format; `reason` is a counter label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Header:
    kind: int
    index: int  # fragment index, 0-based
    count: int  # fragments of this message; 1 = whole
    session: int  # the receiver's session id (u64, chosen by the sender)
    counter: int  # per-session, strictly increasing per datagram sent; the AEAD nonce

    def encode(self) -> bytes:
        return pack_header(VERSION, self.kind, self.index, self.count, self.session, self.counter)


def header_ok(version: int, kind: int, index: int, count: int, session: int) -> bool:
    """The fast check of an unpacked header; `parse_header` says what is wrong."""
    return (
        version == VERSION
        and 0 < kind <= KIND_PROBE_REPLY
        and index < count
        and (count == 1 or kind == KIND_DATA)
        and session != 0
    )


def parse_header(datagram: bytes | memoryview) -> Header:
    """The header of a datagram, checked for everything that needs no key."""
    if len(datagram) <= HEADER_LEN:
        raise MalformedDatagram("short", f"datagram of {len(datagram)} bytes")
    version, kind, index, count, session, counter = _HEADER.unpack_from(datagram)
    if version != VERSION:
        raise MalformedDatagram("version", f"datagram version {version}")
    if kind not in KINDS:
        raise MalformedDatagram("kind", f"datagram kind {kind}")
    if count == 0 or index >= count or (count > 1 and kind != KIND_DATA):
        raise MalformedDatagram("fragment", f"fragment {index} of {count}, kind {kind}")
    if session == 0:
        raise MalformedDatagram("session", "session id 0")
    if count == 1 and len(datagram) < OVERHEAD:
        raise MalformedDatagram("short", f"whole datagram of {len(datagram)} bytes")
    return Header(kind, index, count, session, counter)


def pack_records(records: list[bytes]) -> bytes:
    """Plaintext of a whole DATA datagram: each record with its u16 length."""
    if len(records) == 1:
        return _LENGTH.pack(len(records[0])) + records[0]
    return b"".join(_LENGTH.pack(len(r)) + r for r in records)


def unpack_records(plaintext: bytes) -> list[bytes]:
    """The records of a whole DATA datagram's plaintext (after authentication)."""
    out: list[bytes] = []
    pos, end = 0, len(plaintext)
    while pos < end:
        if end - pos < LENGTH_LEN:
            raise MalformedDatagram("records", "a record length is cut off")
        (length,) = _LENGTH.unpack_from(plaintext, pos)
        pos += LENGTH_LEN
        if length == 0 or pos + length > end:
            raise MalformedDatagram("records", f"record of {length} bytes at {pos}")
        out.append(plaintext[pos : pos + length])
        pos += length
    if not out:
        raise MalformedDatagram("records", "no record")
    return out


def probe_body(probe_id: int, sent_ns: int, size: int) -> bytes:
    """Plaintext of a PROBE that makes a datagram of `size` bytes (padding with zeros)."""
    pad = max(0, size - OVERHEAD - PROBE_LEN)
    return _PROBE.pack(probe_id, sent_ns) + bytes(pad)


def parse_probe(plaintext: bytes) -> tuple[int, int]:
    if len(plaintext) < PROBE_LEN:
        raise MalformedDatagram("probe", f"probe of {len(plaintext)} bytes")
    probe_id, sent_ns = _PROBE.unpack_from(plaintext)
    return int(probe_id), int(sent_ns)


def probe_reply_body(probe_id: int, sent_ns: int, received_size: int) -> bytes:
    return _PROBE_REPLY.pack(probe_id, sent_ns, received_size)


def parse_probe_reply(plaintext: bytes) -> tuple[int, int, int]:
    if len(plaintext) != PROBE_REPLY_LEN:
        raise MalformedDatagram("probe_reply", f"probe reply of {len(plaintext)} bytes")
    probe_id, sent_ns, size = _PROBE_REPLY.unpack(plaintext)
    return int(probe_id), int(sent_ns), int(size)


# ---- PATH records on the trunk stream --------------------------------------------------

TYPE_PATH = 6
"""Packet type of PATH records; they never leave the trunk they were sent on."""
PATH_OFFER = 1
PATH_KEY = 2
PATH_ACK = 3
PUBLIC_KEY_LEN = 32
_PREFIX = bytes([wire.VERSION, TYPE_PATH, 1, 0])
_OFFER = struct.Struct(">4sBH32s")
_KEY = struct.Struct(">4sBQ32s32s")
_ACK = struct.Struct(">4sBQ")


@dataclass(frozen=True, slots=True)
class Offer:
    """The sender listens for datagrams on `port`; a sender of datagrams to it may key a
    session to the one-time X25519 `public_key`."""

    port: int
    public_key: bytes

    def encode(self) -> bytes:
        return _OFFER.pack(_PREFIX, PATH_OFFER, self.port, self.public_key)


@dataclass(frozen=True, slots=True)
class Key:
    """A session the sender will send datagrams under: HPKE `enc` to the offered key."""

    session: int
    enc: bytes
    offered: bytes  # the public key of the OFFER it answers

    def encode(self) -> bytes:
        return _KEY.pack(_PREFIX, PATH_KEY, self.session, self.enc, self.offered)


@dataclass(frozen=True, slots=True)
class Ack:
    """The receiver installed `session`: datagrams under it are accepted from now on."""

    session: int

    def encode(self) -> bytes:
        return _ACK.pack(_PREFIX, PATH_ACK, self.session)


PathRecord = Offer | Key | Ack


def is_path_record(record: bytes) -> bool:
    return len(record) >= 2 and record[0] == wire.VERSION and record[1] == TYPE_PATH


def parse_path_record(record: bytes) -> PathRecord:
    if len(record) < len(_PREFIX) + 1:
        raise MalformedDatagram("path_short", f"PATH record of {len(record)} bytes")
    if record[:4] != _PREFIX:
        raise MalformedDatagram("path_prefix", record[:4].hex())
    kind = record[4]
    if kind == PATH_OFFER and len(record) == _OFFER.size:
        _, _, port, public_key = _OFFER.unpack(record)
        if port == 0:
            raise MalformedDatagram("path_offer", "port 0")
        return Offer(port, public_key)
    if kind == PATH_KEY and len(record) == _KEY.size:
        _, _, session, enc, offered = _KEY.unpack(record)
        if session == 0:
            raise MalformedDatagram("path_key", "session id 0")
        return Key(session, enc, offered)
    if kind == PATH_ACK and len(record) == _ACK.size:
        _, _, session = _ACK.unpack(record)
        return Ack(session)
    raise MalformedDatagram("path_kind", f"PATH kind {kind} of {len(record)} bytes")
