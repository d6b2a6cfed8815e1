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

    python hack/floor_forwarder.py member IFNAME ADDRESS/PREFIX LOCAL_IP REMOTE_IP
    python hack/floor_forwarder.py relay LOCAL_IP PEER_A_IP PEER_B_IP
"""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import sys
from collections.abc import Callable

import pytun

PORT = 1195
FRAME = 65536
PACK_BYTES = 1400
PACK_FRAMES = 64
LENGTH = struct.Struct(">H")


def member(ifname: str, address: str, local: str, remote: str) -> None:
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
                    if parts and size + len(frame) > PACK_BYTES:
                        drops += _send(sendto, b"".join(parts), peer)
                        parts, size = [], 0
                    parts += (pack(len(frame)), frame)
                    size += 2 + len(frame)
                if parts:
                    drops += _send(sendto, b"".join(parts), peer)
                continue
            for _ in range(PACK_FRAMES):
                try:
                    data = recv(FRAME)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                pos = 0
                while pos + 2 <= len(data):
                    (n,) = unpack(data, pos)
                    try:
                        write(tap_fd, data[pos + 2 : pos + 2 + n])
                    except OSError:
                        drops += 1  # a full TAP queue drops the frame, as a link would
                    pos += 2 + n


Address = tuple[str, int]


def _send(sendto: Callable[[bytes, Address], int], data: bytes, peer: Address) -> int:
    """Datagrams dropped: 1 when the socket buffer is full."""
    try:
        sendto(data, peer)
    except OSError:
        return 1
    return 0


def relay(local: str, a: str, b: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((local, PORT))
    other = {a: (b, PORT), b: (a, PORT)}
    drops = 0
    recvfrom, sendto = sock.recvfrom, sock.sendto
    while True:
        data, (source, _port) = recvfrom(FRAME)
        onward = other.get(source)
        if onward is not None:
            try:
                sendto(data, onward)
            except OSError:
                drops += 1


def main() -> int:
    if sys.argv[1] == "member":
        member(*sys.argv[2:6])
    else:
        relay(*sys.argv[2:5])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
