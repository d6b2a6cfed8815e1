"""An off-path attacker of the datagram path: sends UDP datagrams at a node's port.

    python hostile_datagrams.py --target HOST:PORT --captured FILE

FILE holds real datagrams seen on the underlay (hex, one per line). Sent, in order:
  garbage   random bytes of every length, and headers of wrong version, kind, fragment
            position and session id 0
  unknown   well-formed headers under session ids nobody keyed
  forged    headers of the captured datagrams (live session ids, fresh counters) with
            random ciphertext, and the captured ones with one bit flipped
  replayed  every captured datagram, as it was, three times
Prints one JSON line: how many of each it sent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import time

HEADER = struct.Struct(">BBBBQQ")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--target", required=True)
    p.add_argument("--captured", required=True)
    args = p.parse_args()
    host, port = args.target.rsplit(":", 1)
    target = (host, int(port))
    with open(args.captured) as f:
        captured = [bytes.fromhex(line) for line in f.read().split()]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent: dict[str, int] = {}

    def send(kind: str, datagrams: list[bytes]) -> None:
        for d in datagrams:
            sock.sendto(d, target)
            time.sleep(0.0005)  # stay below the socket buffer: every one must arrive
        sent[kind] = sent.get(kind, 0) + len(datagrams)

    rng = random.Random(7)
    send("garbage", [os.urandom(n) for n in range(0, 64)] + [os.urandom(1400) for _ in range(20)])
    send(
        "garbage_headers",
        [
            HEADER.pack(3, 1, 0, 1, 5, 1) + os.urandom(40),  # version
            HEADER.pack(2, 9, 0, 1, 5, 1) + os.urandom(40),  # kind
            HEADER.pack(2, 1, 3, 2, 5, 1) + os.urandom(40),  # fragment index >= count
            HEADER.pack(2, 2, 0, 2, 5, 1) + os.urandom(40),  # a fragmented probe
            HEADER.pack(2, 1, 0, 1, 0, 1) + os.urandom(40),  # session 0
        ],
    )
    send(
        "unknown",
        [HEADER.pack(2, 1, 0, 1, rng.getrandbits(64) | 1, i) + os.urandom(100) for i in range(50)],
    )
    forged = []
    for d in captured:
        _, kind, index, count, session, counter = HEADER.unpack_from(d)
        for step in (1, 2, 1000):
            head = HEADER.pack(2, kind, index, count, session, counter + step)
            forged.append(head + os.urandom(len(d) - HEADER.size))
        flipped = bytearray(d)
        flipped[-1] ^= 1
        forged.append(bytes(flipped))
    send("forged", forged)
    send("replayed", captured * 3)
    print(json.dumps(sent), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
