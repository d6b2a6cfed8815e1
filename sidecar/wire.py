"""PeerTap packet formats on the trunk (see docs/protocol.md, "Packets").

Every packet starts with a 4-byte common prefix:

    0  u8  version      (1)
    1  u8  type         (1 = DATA, 2 = ANNOUNCE)
    2  u8  hop limit    (decremented by every forwarding node; 0 is never sent)
    3  u8  flags        (DATA: bit 0 = FRAGMENT; others must be 0)

DATA (68-byte header, then AEAD ciphertext and 16-byte tag):

    4  16  VLAN-ID
    20 16  MLS-ID       (names the key epoch)
    36 16  VFT          (VLAN forwarding token)
    52  8  sender       (random per node run and VLAN epoch)
    60  8  counter      (u64, strictly increasing per sender; replay protection)
    68  .. ciphertext || tag

ANNOUNCE (plain inside the encrypted trunk; relays must read it):

    4  16  origin       (random per node run, not the peer ID)
    20  8  sequence     (u64, increases with every announcement of the origin)
    28  1  distance     (trunk hops from the origin)
    29  2  count        (u16)
    31  count x (16 VLAN-ID, 16 VFT)

CONTROL (management VLAN; plain inside the encrypted trunk, flooded like ANNOUNCE):

    4  16  origin       (random per node run)
    20  8  sequence     (u64, increases with every CONTROL packet of the origin)
    28 16  VLAN-ID      (the private VLAN the message is about)
    44  1  kind         (HELLO, KEYPACKAGE, COMMIT, WELCOME: see mvlan_messages.py)
    45 32  signer       (Ed25519 node public key)
    77  n  body
    .. 64  signature    (Ed25519 by signer over CONTROL_CONTEXT || bytes 4 .. 77+n)

All integers are big-endian. Decoders raise MalformedPacket, never anything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 1
TYPE_DATA = 1
TYPE_ANNOUNCE = 2
TYPE_CONTROL = 3
FLAG_FRAGMENT = 0x01

PREFIX_LEN = 4
DATA_HEADER_LEN = 68
TAG_LEN = 16
HOP_OFFSET = 2
SENDER_OFFSET = 52  # sender id (8) then counter (8) end the DATA header
# One packet fits one Noise transport message; larger units are fragmented.
MAX_PACKET = 65535
ANNOUNCE_HEADER_LEN = 31
ANNOUNCE_ENTRY_LEN = 32
MAX_ANNOUNCE_ENTRIES = (MAX_PACKET - ANNOUNCE_HEADER_LEN) // ANNOUNCE_ENTRY_LEN

_DATA = struct.Struct(">BBBB16s16s16s8sQ")
_ANNOUNCE = struct.Struct(">BBBB16sQBH")


class MalformedPacket(ValueError):
    """A packet that does not follow the wire format; `reason` is a short counter label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DataHeader:
    hop_limit: int
    flags: int
    vlan_id: bytes
    mls_id: bytes
    vft: bytes
    sender: bytes
    counter: int

    def encode(self) -> bytes:
        return _DATA.pack(
            VERSION,
            TYPE_DATA,
            self.hop_limit,
            self.flags,
            self.vlan_id,
            self.mls_id,
            self.vft,
            self.sender,
            self.counter,
        )


def aad_of(header: bytes) -> bytes:
    """Associated data: the DATA header with the hop limit zeroed (relays change it)."""
    return header[:HOP_OFFSET] + b"\x00" + header[HOP_OFFSET + 1 : DATA_HEADER_LEN]


def packet_type(packet: bytes | memoryview) -> int:
    if len(packet) < PREFIX_LEN:
        raise MalformedPacket("short", f"{len(packet)} bytes")
    if packet[0] != VERSION:
        raise MalformedPacket("version", f"unsupported version {packet[0]}")
    t = packet[1]
    if t not in (TYPE_DATA, TYPE_ANNOUNCE, TYPE_CONTROL):
        raise MalformedPacket("type", f"unknown packet type {t}")
    if packet[HOP_OFFSET] == 0:
        raise MalformedPacket("hop_limit", "hop limit 0")
    return t


_TYPE_NAMES = {TYPE_DATA: "DATA", TYPE_ANNOUNCE: "ANNOUNCE", TYPE_CONTROL: "CONTROL"}


def _check_prefix(
    version: int, ptype: int, hop: int, flags: int, *, expected: int, allowed_flags: int = 0
) -> None:
    if version != VERSION or ptype != expected:
        raise MalformedPacket("type", f"not a version-1 {_TYPE_NAMES[expected]} packet")
    if flags & ~allowed_flags:
        raise MalformedPacket("flags", f"unknown flags {flags:#x}")
    if hop == 0:
        raise MalformedPacket("hop_limit", "hop limit 0")


def decode_data(packet: bytes | memoryview) -> DataHeader:
    if len(packet) < DATA_HEADER_LEN + TAG_LEN:
        raise MalformedPacket("short", f"DATA packet of {len(packet)} bytes")
    if len(packet) > MAX_PACKET:
        raise MalformedPacket("long", f"DATA packet of {len(packet)} bytes")
    version, ptype, hop, flags, vid, mid, vft, sender, counter = _DATA.unpack_from(packet)
    _check_prefix(version, ptype, hop, flags, expected=TYPE_DATA, allowed_flags=FLAG_FRAGMENT)
    return DataHeader(hop, flags, vid, mid, vft, sender, counter)


def with_hop_limit(packet: bytes | memoryview, hop_limit: int) -> bytes:
    """A copy of the packet with a new hop limit (the only field a relay may change)."""
    out = bytearray(packet)
    out[HOP_OFFSET] = hop_limit
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Announce:
    hop_limit: int
    origin: bytes
    sequence: int
    distance: int
    entries: tuple[tuple[bytes, bytes], ...]  # (VLAN-ID, VFT)

    def encode(self) -> bytes:
        if len(self.entries) > MAX_ANNOUNCE_ENTRIES:
            raise ValueError(f"too many announce entries ({len(self.entries)})")
        head = _ANNOUNCE.pack(
            VERSION,
            TYPE_ANNOUNCE,
            self.hop_limit,
            0,
            self.origin,
            self.sequence,
            self.distance,
            len(self.entries),
        )
        return head + b"".join(v + t for v, t in self.entries)


def decode_announce(packet: bytes | memoryview) -> Announce:
    if len(packet) < ANNOUNCE_HEADER_LEN:
        raise MalformedPacket("short", f"ANNOUNCE of {len(packet)} bytes")
    version, ptype, hop, flags, origin, seq, dist, count = _ANNOUNCE.unpack_from(packet)
    _check_prefix(version, ptype, hop, flags, expected=TYPE_ANNOUNCE)
    if len(packet) != ANNOUNCE_HEADER_LEN + count * ANNOUNCE_ENTRY_LEN:
        raise MalformedPacket("length", f"ANNOUNCE says {count} entries, has {len(packet)} bytes")
    body = bytes(packet[ANNOUNCE_HEADER_LEN:])
    entries = tuple(
        (body[i : i + 16], body[i + 16 : i + 32]) for i in range(0, len(body), ANNOUNCE_ENTRY_LEN)
    )
    return Announce(hop, origin, seq, dist, entries)


# ---- CONTROL -----------------------------------------------------------------------------

CONTROL_CONTEXT = b"peertap/v1 control\x00"
CONTROL_HEADER_LEN = 77
SIGNATURE_LEN = 64
_CONTROL = struct.Struct(">BBBB16sQ16sB32s")


@dataclass(frozen=True, slots=True)
class Control:
    hop_limit: int
    origin: bytes
    sequence: int
    vlan_id: bytes
    kind: int
    signer: bytes
    body: bytes
    signature: bytes = bytes(SIGNATURE_LEN)

    def signed_part(self) -> bytes:
        """What the signature covers: everything after the prefix, before the signature."""
        return CONTROL_CONTEXT + self.encode()[PREFIX_LEN:-SIGNATURE_LEN]

    def encode(self) -> bytes:
        head = _CONTROL.pack(
            VERSION,
            TYPE_CONTROL,
            self.hop_limit,
            0,
            self.origin,
            self.sequence,
            self.vlan_id,
            self.kind,
            self.signer,
        )
        packet = head + self.body + self.signature
        if len(packet) > MAX_PACKET:
            raise ValueError(f"CONTROL packet of {len(packet)} bytes is too long")
        return packet


def decode_control(packet: bytes | memoryview) -> Control:
    if len(packet) < CONTROL_HEADER_LEN + SIGNATURE_LEN:
        raise MalformedPacket("short", f"CONTROL of {len(packet)} bytes")
    if len(packet) > MAX_PACKET:
        raise MalformedPacket("long", f"CONTROL of {len(packet)} bytes")
    version, ptype, hop, flags, origin, seq, vid, kind, signer = _CONTROL.unpack_from(packet)
    _check_prefix(version, ptype, hop, flags, expected=TYPE_CONTROL)
    data = bytes(packet)
    return Control(
        hop,
        origin,
        seq,
        vid,
        kind,
        signer,
        data[CONTROL_HEADER_LEN:-SIGNATURE_LEN],
        data[-SIGNATURE_LEN:],
    )
