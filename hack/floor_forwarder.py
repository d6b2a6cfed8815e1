"""The floor of a Python data plane (`make bench`, scenario `python-floor`): Ethernet
frames between a TAP device and a UDP peer, and nothing else.

No encryption, no switching, no framing, no batching beyond what the kernel hands over:
one thread blocks in epoll on the TAP and the UDP socket and moves each frame read from
one to the other with one syscall. Whatever a Python overlay adds (sealing, MAC learning,
routes, a relay hop) comes on top of what this costs, so its RTT overhead and 64-byte
frame rate bound what any Python design reaches on the machine the bench runs on.

    python hack/floor_forwarder.py IFNAME ADDRESS/PREFIX LOCAL_IP REMOTE_IP [PORT]
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys

import pytun

FRAME = 65536


def main() -> int:
    ifname, address, local, remote = sys.argv[1:5]
    port = int(sys.argv[5]) if len(sys.argv) > 5 else 1195
    tap = pytun.TunTapDevice(name=ifname, flags=pytun.IFF_TAP | pytun.IFF_NO_PI)
    tap.mtu = 1400
    subprocess.run(["ip", "addr", "add", address, "dev", ifname], check=True)
    tap.up()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((local, port))
    sock.setblocking(False)
    os.set_blocking(tap.fileno(), False)
    peer = (remote, port)
    tap_fd, udp_fd = tap.fileno(), sock.fileno()
    epoll = select.epoll()
    epoll.register(tap_fd, select.EPOLLIN)
    epoll.register(udp_fd, select.EPOLLIN)
    read, write, sendto, recv = os.read, os.write, sock.sendto, sock.recv
    while True:
        for fd, _mask in epoll.poll():
            try:
                if fd == tap_fd:
                    while True:
                        sendto(read(tap_fd, FRAME), peer)
                else:
                    while True:
                        write(tap_fd, recv(FRAME))
            except (BlockingIOError, ConnectionRefusedError):
                pass
            except OSError:
                pass  # a full socket or TAP queue: the frame is dropped, as a link would


if __name__ == "__main__":
    raise SystemExit(main())
