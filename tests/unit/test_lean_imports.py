"""Lean imports (sidecar/lean_imports.py), as `peertap run` installs them, in a fresh
interpreter: the node's modules load without the parts of py-libp2p and pyroute2 it
never uses, a real libp2p trunk still carries records, and every deferred or skipped
name still works when something does use it."""

from __future__ import annotations

import json
import subprocess
import sys

from libp2p.peer.id import ID
from libp2p.security.tls.autotls.acme import compute_b36_peer_id

from peertap.sidecar import identity

NEVER_LOADED = ["zeroconf", "requests", "httpx", "pyroute2.ndb", "libp2p.kad_dht", "libp2p.bitswap"]

SCRIPT = r"""
import json, sys
from peertap.sidecar import lean_imports
lean_imports.install()
import peertap.sidecar.node  # everything a node process imports
import trio
from peertap.sidecar.trunk import Trunk, TrunkSettings
from peertap.sidecar.wire import Intro

loaded_at_start = [m for m in NAMES if m in sys.modules]

class Inbox:
    def __init__(self):
        self.received = []
        self.got = trio.Event()
    def intro(self):
        return Intro().encode()
    def admit(self, peer, intro):
        return True
    async def peer_up(self, peer):
        pass
    async def peer_down(self, peer):
        pass
    async def records(self, peer, records):
        self.received += records
        self.got.set()

async def trunk_pair():
    inbox_a, inbox_b = Inbox(), Inbox()
    b = Trunk(TrunkSettings(seed=bytes([2]) * 32, listen=["/ip4/127.0.0.1/tcp/0"]), inbox_b)
    async with trio.open_nursery() as nursery:
        addrs = await nursery.start(b.run)
        a = Trunk(
            TrunkSettings(
                seed=bytes([1]) * 32,
                listen=["/ip4/127.0.0.1/tcp/0"],
                bootstrap=[f"{addrs[0]}/p2p/{b.peer_id}"],
            ),
            inbox_a,
        )
        nursery.start_soon(a.run)
        with trio.fail_after(120):  # a deadline for a stuck run, not a measurement
            while b.peer_id not in a.peers():
                await trio.sleep(0.05)
            a.send(b.peer_id, [b"\x03\x01\x08\x00 record through a lean libp2p"])
            await inbox_b.got.wait()
        nursery.cancel_scope.cancel()
    return [r.hex() for r in inbox_b.received]

received = trio.run(trunk_pair)

from pyroute2 import IPRoute
ip = IPRoute()
lo = ip.link_lookup(ifname="lo")
ip.close()
import pyroute2
ndb_is_real = pyroute2.NDB.__module__ == "pyroute2.ndb.main"  # runs pyroute2's __init__

from libp2p.peer.id import ID
from libp2p.security.tls.autotls.acme import compute_b36_peer_id
b36 = compute_b36_peer_id(ID.from_base58(sys.argv[1]))  # loads the real module now

print(json.dumps({"loaded_at_start": loaded_at_start, "received": received, "lo": lo,
                  "ndb_is_real": ndb_is_real, "b36": b36,
                  "acme_loaded_on_use": "requests" in sys.modules}))
"""


def test_a_node_imports_lean_and_its_trunk_and_every_deferred_name_still_work() -> None:
    peer = identity.generate().peer_id
    script = f"NAMES = {NEVER_LOADED!r}\n" + SCRIPT
    out = subprocess.run(
        [sys.executable, "-P", "-c", script, peer],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loaded_at_start"] == []
    assert result["received"] == [b"\x03\x01\x08\x00 record through a lean libp2p".hex()]
    assert result["lo"] == [1]
    assert result["ndb_is_real"]
    assert result["b36"] == compute_b36_peer_id(ID.from_base58(peer))
    assert result["acme_loaded_on_use"]
