"""PeerTap packet formats on the trunk (see docs/protocol.md, "Packets").

Every packet starts with a 4-byte common prefix:

    0  u8  version      (4; INTRO alone keeps 2, its frozen format)
    1  u8  type         (1 DATA, 2 ANNOUNCE, 3 CONTROL, 4 INTRO, 5 PROBE)
    2  u8  hop limit    (decremented by every forwarding node; 0 is never sent)
    3  u8  flags        (DATA: bit 0 = FRAGMENT, bit 1 = SENDER_TAGS, bit 2 = BUNDLE; others 0)

DATA (68-byte header, then AEAD ciphertext and 16-byte tag):

    4  16  VLAN-ID
    20 16  MLS-ID       (names the key epoch)
    36 16  VFT          (VLAN forwarding token)
    52  8  sender       (random per node run and VLAN port)
    60  8  counter      (u64 microsecond clock, strictly increasing per sender)
    68  .. ciphertext || tag
        .. with SENDER_TAGS (private VLANs): n x (leaf u32, tag 8) || n (u16)

ANNOUNCE (plain inside the encrypted trunk; relays must read it), one per VLAN:

    4  32  origin       (the origin node's Ed25519 public key)
    36 16  VLAN-ID
    52  8  sequence     (u64 microsecond clock of the origin, strictly increasing)
    60  1  distance     (trunk hops from the origin; not signed)
    61  2  count        (u16)
    63  count x VFT (16)
    .. 64  signature    (Ed25519 by origin over ANNOUNCE_CONTEXT || bytes 4 .. 60
                         || bytes 61 .. 63+16*count)

CONTROL (management VLAN; plain inside the encrypted trunk, flooded like ANNOUNCE):

    4   8  timestamp    (u64 microsecond clock of the signer, strictly increasing)
    12 16  VLAN-ID      (the private VLAN the message is about)
    28  1  kind         (HELLO, KEYPACKAGE, COMMIT, WELCOME, ...: see mvlan_messages.py)
    29 32  signer       (Ed25519 node public key)
    61  n  body
    .. 64  signature    (Ed25519 by signer over CONTROL_CONTEXT || bytes 4 .. 61+n)

INTRO (the first record each side sends on a trunk stream; admission):

    4   1  lowest protocol version supported
    5   1  highest protocol version supported
    6   1  roles        (bit 0: relay, bit 1: datagram path)
    7   1  credential count (0..8)
    8  ..  count x (u16 length, node credential bytes)

PROBE (path measurement between two neighbours; never forwarded; hop limit 1):

    3   1  flags        (bit 0 = REPLY)
    4   8  probe id     (the prober's counter; a reply echoes it)
    12  8  echo         (opaque to the replier, echoed: the prober's send time)

All integers are big-endian. Decoders raise MalformedPacket, never anything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 4
"""Packet version this implementation sends (docs/protocol.md, section 9: what changed)."""
INTRO_VERSION = 2
"""Prefix version of every INTRO, whatever the versions its sender speaks: the INTRO
format is frozen so that nodes of any version can read each other's and refuse visibly."""
TYPE_DATA = 1
TYPE_ANNOUNCE = 2
TYPE_CONTROL = 3
TYPE_INTRO = 4
TYPE_PROBE = 5
FLAG_FRAGMENT = 0x01
FLAG_SENDER_TAGS = 0x02
FLAG_BUNDLE = 0x04
"""DATA: the plaintext is a bundle of small units (bundle.py); never with FRAGMENT."""

PREFIX_LEN = 4
DATA_HEADER_LEN = 68
TAG_LEN = 16
HOP_OFFSET = 2
# One packet fits one Noise transport message; larger units are fragmented.
MAX_PACKET = 65535
KEY_LEN = 32
SIGNATURE_LEN = 64
ANNOUNCE_HEADER_LEN = 63
ANNOUNCE_ENTRY_LEN = 16
MAX_ANNOUNCE_ENTRIES = (MAX_PACKET - ANNOUNCE_HEADER_LEN - SIGNATURE_LEN) // ANNOUNCE_ENTRY_LEN

_DATA = struct.Struct(">BBBB16s16s16s8sQ")
_ANNOUNCE = struct.Struct(">BBBB32s16sQBH")


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


_TYPE_NAMES = {
    TYPE_DATA: "DATA",
    TYPE_ANNOUNCE: "ANNOUNCE",
    TYPE_CONTROL: "CONTROL",
    TYPE_INTRO: "INTRO",
    TYPE_PROBE: "PROBE",
}


def packet_type(packet: bytes | memoryview) -> int:
    if len(packet) < PREFIX_LEN:
        raise MalformedPacket("short", f"{len(packet)} bytes")
    t = packet[1]
    if packet[0] != VERSION and (packet[0], t) != (INTRO_VERSION, TYPE_INTRO):
        raise MalformedPacket("version", f"unsupported version {packet[0]}")
    if t not in _TYPE_NAMES:
        raise MalformedPacket("type", f"unknown packet type {t}")
    if packet[HOP_OFFSET] == 0:
        raise MalformedPacket("hop_limit", "hop limit 0")
    return t


def _check_prefix(
    version: int,
    ptype: int,
    hop: int,
    flags: int,
    *,
    expected: int,
    allowed_flags: int = 0,
    prefix_version: int = VERSION,
) -> None:
    if version != prefix_version or ptype != expected:
        raise MalformedPacket(
            "type", f"not a version-{prefix_version} {_TYPE_NAMES[expected]} packet"
        )
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
    _check_prefix(
        version,
        ptype,
        hop,
        flags,
        expected=TYPE_DATA,
        allowed_flags=FLAG_FRAGMENT | FLAG_SENDER_TAGS | FLAG_BUNDLE,
    )
    if flags & FLAG_BUNDLE and flags & FLAG_FRAGMENT:
        raise MalformedPacket("flags", "a bundle is never fragmented")
    return DataHeader(hop, flags, vid, mid, vft, sender, counter)


_HOP_BYTES = [bytes((i,)) for i in range(256)]


def with_hop_limit(packet: bytes | memoryview, hop_limit: int) -> bytes:
    """A copy of the packet with a new hop limit (the only field a relay may change)."""
    # One copy of the packet (a relay does this for every 64 KiB unit it forwards).
    view = memoryview(packet)
    return b"".join((view[:HOP_OFFSET], _HOP_BYTES[hop_limit], view[HOP_OFFSET + 1 :]))


# ---- ANNOUNCE ----------------------------------------------------------------------------

ANNOUNCE_CONTEXT = b"peertap/v2 announce\x00"


@dataclass(frozen=True, slots=True)
class Announce:
    """The VFTs one origin wants on one VLAN (an empty set withdraws them)."""

    hop_limit: int
    origin: bytes  # the origin node's Ed25519 public key
    vlan_id: bytes
    sequence: int
    distance: int
    tokens: tuple[bytes, ...]
    signature: bytes = bytes(SIGNATURE_LEN)

    def signed_part(self) -> bytes:
        """What the origin signs: everything but the prefix, the distance and the signature."""
        return b"".join(
            (
                ANNOUNCE_CONTEXT,
                self.origin,
                self.vlan_id,
                self.sequence.to_bytes(8, "big"),
                len(self.tokens).to_bytes(2, "big"),
                *self.tokens,
            )
        )

    def encode(self) -> bytes:
        if len(self.tokens) > MAX_ANNOUNCE_ENTRIES:
            raise ValueError(f"too many announced tokens ({len(self.tokens)})")
        head = _ANNOUNCE.pack(
            VERSION,
            TYPE_ANNOUNCE,
            self.hop_limit,
            0,
            self.origin,
            self.vlan_id,
            self.sequence,
            self.distance,
            len(self.tokens),
        )
        return head + b"".join(self.tokens) + self.signature


def decode_announce(packet: bytes | memoryview) -> Announce:
    if len(packet) < ANNOUNCE_HEADER_LEN + SIGNATURE_LEN:
        raise MalformedPacket("short", f"ANNOUNCE of {len(packet)} bytes")
    if len(packet) > MAX_PACKET:
        raise MalformedPacket("long", f"ANNOUNCE of {len(packet)} bytes")
    version, ptype, hop, flags, origin, vid, seq, dist, count = _ANNOUNCE.unpack_from(packet)
    _check_prefix(version, ptype, hop, flags, expected=TYPE_ANNOUNCE)
    if len(packet) != ANNOUNCE_HEADER_LEN + count * ANNOUNCE_ENTRY_LEN + SIGNATURE_LEN:
        raise MalformedPacket("length", f"ANNOUNCE says {count} tokens, has {len(packet)} bytes")
    data = bytes(packet)
    tokens = tuple(
        data[i : i + ANNOUNCE_ENTRY_LEN]
        for i in range(ANNOUNCE_HEADER_LEN, len(data) - SIGNATURE_LEN, ANNOUNCE_ENTRY_LEN)
    )
    return Announce(hop, origin, vid, seq, dist, tokens, data[-SIGNATURE_LEN:])


# ---- CONTROL -----------------------------------------------------------------------------

CONTROL_CONTEXT = b"peertap/v2 control\x00"
CONTROL_HEADER_LEN = 61
_CONTROL = struct.Struct(">BBBBQ16sB32s")


@dataclass(frozen=True, slots=True)
class Control:
    hop_limit: int
    timestamp: int  # microseconds since the Unix epoch, by the signer's clock
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
            self.timestamp,
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
    version, ptype, hop, flags, stamp, vid, kind, signer = _CONTROL.unpack_from(packet)
    _check_prefix(version, ptype, hop, flags, expected=TYPE_CONTROL)
    data = bytes(packet)
    return Control(
        hop,
        stamp,
        vid,
        kind,
        signer,
        data[CONTROL_HEADER_LEN:-SIGNATURE_LEN],
        data[-SIGNATURE_LEN:],
    )


# ---- INTRO -------------------------------------------------------------------------------

ROLE_RELAY = 0x01
ROLE_DATAGRAM = 0x02
"""INTRO roles bit 1: the sender runs the datagram path (docs/protocol.md, section 8b)."""
LOWEST_VERSION = 4
"""Oldest protocol version this implementation speaks: version 3 nodes cannot read
version 4 packets (bundles, docs/protocol.md, section 9), so a node speaks 4 only."""


def common_version(lowest: int, highest: int) -> int | None:
    """The best version both this node and a peer speaking lowest..highest speak."""
    best = min(highest, VERSION)
    return best if best >= max(lowest, LOWEST_VERSION) else None


MAX_INTRO_CREDENTIALS = 8
MAX_CREDENTIAL_LEN = 1024
_INTRO = struct.Struct(">BBBBBBBB")


@dataclass(frozen=True, slots=True)
class Intro:
    """A node's introduction: protocol versions, roles and its node credentials."""

    lowest: int = LOWEST_VERSION
    highest: int = VERSION
    roles: int = 0
    credentials: tuple[bytes, ...] = ()

    def encode(self) -> bytes:
        if len(self.credentials) > MAX_INTRO_CREDENTIALS:
            raise ValueError(f"at most {MAX_INTRO_CREDENTIALS} credentials fit an INTRO")
        out = [
            _INTRO.pack(
                INTRO_VERSION,
                TYPE_INTRO,
                1,
                0,
                self.lowest,
                self.highest,
                self.roles,
                len(self.credentials),
            )
        ]
        for c in self.credentials:
            if not 0 < len(c) <= MAX_CREDENTIAL_LEN:
                raise ValueError(f"credential of {len(c)} bytes does not fit an INTRO")
            out.append(len(c).to_bytes(2, "big") + c)
        return b"".join(out)


def decode_intro(packet: bytes | memoryview) -> Intro:
    if len(packet) < _INTRO.size:
        raise MalformedPacket("short", f"INTRO of {len(packet)} bytes")
    version, ptype, hop, flags, lowest, highest, roles, count = _INTRO.unpack_from(packet)
    _check_prefix(version, ptype, hop, flags, expected=TYPE_INTRO, prefix_version=INTRO_VERSION)
    if lowest > highest or count > MAX_INTRO_CREDENTIALS:
        raise MalformedPacket("intro", f"versions {lowest}..{highest}, {count} credentials")
    data = bytes(packet)
    pos = _INTRO.size
    creds = []
    for _ in range(count):
        if pos + 2 > len(data):
            raise MalformedPacket("length", "INTRO ends inside a credential length")
        n = int.from_bytes(data[pos : pos + 2], "big")
        if not 0 < n <= MAX_CREDENTIAL_LEN or pos + 2 + n > len(data):
            raise MalformedPacket("length", f"INTRO credential of {n} bytes")
        creds.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    if pos != len(data):
        raise MalformedPacket("length", f"{len(data) - pos} bytes after the INTRO credentials")
    return Intro(lowest, highest, roles, tuple(creds))


# ---- PROBE -------------------------------------------------------------------------------

FLAG_REPLY = 0x01
_PROBE = struct.Struct(">BBBBQQ")
PROBE_LEN = _PROBE.size


@dataclass(frozen=True, slots=True)
class Probe:
    """A path probe to a neighbour, or its reply (same id and echo, REPLY set)."""

    probe_id: int
    echo: int
    reply: bool = False

    def encode(self) -> bytes:
        flags = FLAG_REPLY if self.reply else 0
        return _PROBE.pack(VERSION, TYPE_PROBE, 1, flags, self.probe_id, self.echo)

    def answer(self) -> Probe:
        return Probe(self.probe_id, self.echo, reply=True)


def decode_probe(packet: bytes | memoryview) -> Probe:
    if len(packet) != PROBE_LEN:
        raise MalformedPacket("length", f"PROBE of {len(packet)} bytes")
    version, ptype, hop, flags, probe_id, echo = _PROBE.unpack_from(packet)
    _check_prefix(version, ptype, hop, flags, expected=TYPE_PROBE, allowed_flags=FLAG_REPLY)
    return Probe(probe_id, echo, reply=bool(flags & FLAG_REPLY))
