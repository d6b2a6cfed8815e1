"""The floor of a Python data plane (`make bench`, scenarios `python-floor` and
`python-floor-relay`): Ethernet frames between a TAP device and a UDP peer, and nothing
else.

No encryption, no switching, no routes: one thread blocks in epoll on the TAP and the
UDP socket. What the TAP has waiting is read frame by frame (a TAP offers no batched
read) and sent as one datagram of length-prefixed frames (u16 each, up to ~1,400 bytes);
a datagram received is written back to the TAP frame by frame. So each frame costs its
one TAP syscall at each end plus a share of a UDP send and receive: the least any
Python overlay can do. Whatever PeerTap adds (sealing, MAC learning, routes) comes on
top, so this forwarder's RTT overhead and 64-byte frame rate bound what any Python
design reaches on the machine the bench runs on. As a relay it only turns datagrams
around between its two peers, the least a Python relay can do per datagram.

`--sealed` adds the two encryption layers PeerTap has, and nothing else: each frame is
sealed with AES-256-GCM under an end-to-end key (as a VLAN's frame key), and each
datagram again under a key of its link (as a datagram path's session key); a relay
opens each datagram with its inbound link's key and seals it with its outbound one.
Nonces come from counters; there is no key exchange, replay window or header to check
(the keys are fixed constants: a measurement, not a VPN). So it is the floor of a
Python data plane that encrypts the way PeerTap must: the RTT and relay ratios it
reaches bound what PeerTap can reach on this machine.

    python hack/floor_forwarder.py member IFNAME ADDRESS/PREFIX LOCAL_IP REMOTE_IP [--sealed]
    python hack/floor_forwarder.py relay LOCAL_IP PEER_A_IP PEER_B_IP [--sealed OWN_A OWN_B]
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import struct
import subprocess
import sys
from collections.abc import Callable

import pytun
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PORT = 1195
FRAME = 65536
PACK_BYTES = 1400
PACK_FRAMES = 64
LENGTH = struct.Struct(">H")
NONCE = struct.Struct(">4xQ")
NONCE_LEN = 12
# Fixed keys (both ends must agree without a handshake): one end to end, and one per
# link, from the link's two addresses.
FRAME_KEY = bytes(range(32))


def link_key(x: str, y: str) -> bytes:
    return hashlib.sha256("|".join(sorted((x, y))).encode()).digest()


class Sealer:
    """One AES-256-GCM key and its send counter: seal(data) = nonce || ciphertext+tag."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._counter = 0

    def seal(self, data: bytes) -> bytes:
        self._counter += 1
        nonce = NONCE.pack(self._counter)
        return nonce + self._aead.encrypt(nonce, data, None)

    def open(self, data: bytes) -> bytes:
        return self._aead.decrypt(data[:NONCE_LEN], data[NONCE_LEN:], None)


def member(ifname: str, address: str, local: str, remote: str, *, sealed: bool) -> None:
    tap = pytun.TunTapDevice(name=ifname, flags=pytun.IFF_TAP | pytun.IFF_NO_PI)
    tap.mtu = 1400
    subprocess.run(["ip", "addr", "add", address, "dev", ifname], check=True)
    tap.up()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((local, PORT))
    sock.setblocking(False)
    tap_fd = tap.fileno()
    os.set_blocking(tap_fd, False)
    peer = (remote, PORT)
    epoll = select.epoll()
    epoll.register(tap_fd, select.EPOLLIN)
    epoll.register(sock.fileno(), select.EPOLLIN)
    read, write, sendto, recv = os.read, os.write, sock.sendto, sock.recv
    pack, unpack = LENGTH.pack, LENGTH.unpack_from
    # Sealed: frames under the end-to-end key, datagrams under the link's.
    frames = Sealer(FRAME_KEY) if sealed else None
    link = Sealer(link_key(local, remote)) if sealed else None
    drops = 0  # frames or datagrams a full queue refused (kept for a debugger's eyes)
    while True:
        for fd, _mask in epoll.poll():
            if fd == tap_fd:
                parts: list[bytes] = []
                size = 0
                while len(parts) < 2 * PACK_FRAMES:
                    try:
                        frame = read(tap_fd, FRAME)
                    except BlockingIOError:
                        break
                    if frames is not None:
                        frame = frames.seal(frame)
                    if parts and size + len(frame) > PACK_BYTES:
                        drops += _send(sendto, b"".join(parts), peer, link)
                        parts, size = [], 0
                    parts += (pack(len(frame)), frame)
                    size += 2 + len(frame)
                if parts:
                    drops += _send(sendto, b"".join(parts), peer, link)
                continue
            for _ in range(PACK_FRAMES):
                try:
                    data = recv(FRAME)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                if link is not None:
                    data = link.open(data)
                pos = 0
                while pos + 2 <= len(data):
                    (n,) = unpack(data, pos)
                    frame = data[pos + 2 : pos + 2 + n]
                    if frames is not None:
                        frame = frames.open(frame)
                    try:
                        write(tap_fd, frame)
                    except OSError:
                        drops += 1  # a full TAP queue drops the frame, as a link would
                    pos += 2 + n


Address = tuple[str, int]


def _send(
    sendto: Callable[[bytes, Address], int], data: bytes, peer: Address, link: Sealer | None
) -> int:
    """Datagrams dropped: 1 when the socket buffer is full."""
    if link is not None:
        data = link.seal(data)
    try:
        sendto(data, peer)
    except OSError:
        return 1
    return 0


def relay(local: str, a: str, b: str, *, own: tuple[str, str] | None) -> None:
    """Turn datagrams around between a and b. Sealed (`own`: our addresses facing a and
    b), each is opened with its inbound link's key and sealed with the outbound one's."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((local, PORT))
    other = {a: (b, PORT), b: (a, PORT)}
    links: dict[str, Sealer] = {}
    if own is not None:
        links = {a: Sealer(link_key(a, own[0])), b: Sealer(link_key(b, own[1]))}
    drops = 0
    recvfrom, sendto = sock.recvfrom, sock.sendto
    while True:
        data, (source, _port) = recvfrom(FRAME)
        onward = other.get(source)
        if onward is None:
            continue
        if links:
            data = links[onward[0]].seal(links[source].open(data))
        try:
            sendto(data, onward)
        except OSError:
            drops += 1


def main() -> int:
    args = sys.argv[1:]
    sealed = "--sealed" in args
    if args[0] == "member":
        member(*args[1:5], sealed=sealed)
    else:
        own = (args[5], args[6]) if sealed else None
        relay(*args[1:4], own=own)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
