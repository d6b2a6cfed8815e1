"""A member that attacks its own private VLAN from inside.

    PEERTAP_INSIDER_TRIGGER=FILE python insider_member.py run --config node.json

It is a real `peertap run` (same config, key and credential: a full member holding
the group's keys) whose port is changed the way an attacker would change it:

- it records every DATA packet the mesh delivers to it from other members;
- once FILE exists, the next unit it reads from its TAP also sends (once):
  1. 5,000 packets under the group key with fresh sender ids, each with a tag
     trailer naming every leaf (an attempt to fill receivers' replay-window tables
     and flush the windows of other senders),
  2. every recorded packet again, unchanged (a replay of other members' frames).

It writes one JSON line to FILE + ".done" saying what it sent.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from peertap.sidecar import cli, stamps, wire
from peertap.sidecar.crypto import senders
from peertap.sidecar.port import VlanPort

FLUSH = 5000
TRIGGER = Path(os.environ["PEERTAP_INSIDER_TRIGGER"])
recorded: list[bytes] = []
done = False

original_deliver = VlanPort.deliver
original_outgoing = VlanPort.outgoing


def deliver(self: VlanPort, packet: bytes | memoryview, header: wire.DataHeader) -> bool:
    recorded.append(bytes(packet))
    del recorded[:-1000]
    return original_deliver(self, packet, header)


def flush_attempts(port: VlanPort, unit: bytes) -> list[tuple[bytes, bytes]]:
    epoch = port.keys.current()
    leaves = [] if epoch.binding is None else list(epoch.binding.members)
    out = []
    for _ in range(FLUSH):
        sender = os.urandom(8)
        counter = stamps.now_us()
        header = wire.DataHeader(
            8,
            wire.FLAG_SENDER_TAGS,
            port.vlan_id,
            epoch.mls_id,
            port.tokens.broadcast,
            sender,
            counter,
        ).encode()
        nonce = bytes(4) + counter.to_bytes(8, "big")
        sealed = epoch.sender_aead(sender).encrypt(nonce, unit, wire.aad_of(header))
        trailer = b"".join(senders.ENTRY.pack(i, os.urandom(8)) for i in leaves)
        out.append(
            (port.tokens.broadcast, header + sealed + trailer + len(leaves).to_bytes(2, "big"))
        )
    return out


def outgoing(self: VlanPort, units: list[bytes], **kwargs: Any) -> tuple[Any, bool]:
    global done
    out, changed = original_outgoing(self, units, **kwargs)
    if not done and units and TRIGGER.exists():
        done = True
        replayed = [(wire.decode_data(p).vft, p) for p in recorded]
        out = out + flush_attempts(self, units[0]) + replayed
        Path(str(TRIGGER) + ".done").write_text(
            json.dumps({"flush": FLUSH, "replayed": len(replayed)}) + "\n"
        )
    return out, changed


VlanPort.deliver = deliver  # type: ignore[method-assign]
VlanPort.outgoing = outgoing  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
