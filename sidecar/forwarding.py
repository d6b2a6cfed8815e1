"""The forwarder: DATA packets between member ports and trunk peers, by VFT.

Send (port -> mesh):   port.outgoing seals units -> next hops of (VLAN-ID, VFT)
                       -> per-peer batches -> trunk.send (never waits; full queues drop)
Receive (mesh -> port / mesh), one DATA packet from neighbour N:
    decode -> relay only: duplicate? (hash of the whole packet) -> deliver to our port
    if it wants the VFT -> relay only: ACL, hop limit, forward to next hops but N

Duplicate suppression is keyed by a hash of everything but the hop limit, so a forged
copy (same sender and counter, other bytes) can never make a relay drop the genuine
packet. Members do not need it: their replay windows drop copies after authentication.
"""

from __future__ import annotations

from collections.abc import Callable

import blake3

from . import wire
from .counters import Counters
from .port import VlanPort
from .switch.acl import Acl
from .switch.dedup import Dedup
from .switch.routes import RouteTable
from .trace import Trace

Batches = dict[str, list[bytes]]
Send = Callable[[str, list[bytes]], bool]


def dedup_key(packet: bytes) -> bytes:
    """A DATA packet's identity for duplicate suppression: all bytes but the hop limit."""
    return blake3.blake3(memoryview(packet)[wire.HOP_OFFSET + 1 :]).digest(16)


class Forwarder:
    def __init__(
        self,
        *,
        ports: dict[bytes, VlanPort],
        routes: RouteTable,
        acl: Acl,
        relay: bool,
        counters: Counters,
        send: Send,
        trace: Trace | None,
    ) -> None:
        self.ports = ports
        self.routes = routes
        self.acl = acl
        self.relay = relay
        self.counters = counters
        self._send = send
        self.trace = trace
        self.dedup = Dedup()

    def route_out(self, port: VlanPort, units: list[bytes], batches: Batches) -> bool:
        """Seal units of a port and sort the packets by next hop into `batches`;
        True if the port's wanted tokens changed (re-announce)."""
        sealed, changed = port.outgoing(units, reachable=self.routes.wanted)
        for token, packet in sealed:
            hops = self.routes.next_hops(port.vlan_id, token)
            if not hops:
                self.counters.drop("no_route")
                continue
            for peer in hops:
                batches.setdefault(peer, []).append(packet)
        return changed

    def send_batches(self, batches: Batches, direction: str) -> None:
        for peer, packets in batches.items():
            if self.trace:
                for p in packets:
                    self.trace.record(direction, peer, p)
            if self._send(peer, packets):
                self.counters.inc(f"{direction}_packets", len(packets))
            else:
                self.counters.drop("peer_unsendable", len(packets))

    def send_now(self, batches: Batches, direction: str, send: Send) -> Batches:
        """Send what `send` carries at once (a datagram path that is up); the batches it
        refuses come back, neither traced nor counted, for `send_batches` to send later."""
        later: Batches = {}
        for peer, packets in batches.items():
            if not send(peer, packets):
                later[peer] = packets
                continue
            if self.trace:
                for p in packets:
                    self.trace.record(direction, peer, p)
            self.counters.inc(f"{direction}_packets", len(packets))
        return later

    def on_data(self, peer: str, packet: bytes, forwards: Batches) -> None:
        header = wire.decode_data(packet)
        self.counters.inc("rx_packets")
        if self.relay and not self.dedup.first_time(dedup_key(packet)):
            self.counters.drop("duplicate")
            return
        port = self.ports.get(header.vlan_id)
        if port is not None and header.vft in port.wanted:
            port.deliver(packet, header)
        if not self.relay:
            if port is None:
                self.counters.drop("not_member")
            return
        if not self.acl.allows(header.vlan_id):
            self.counters.drop("acl")
            return
        hops = [p for p in self.routes.next_hops(header.vlan_id, header.vft) if p != peer]
        if not hops:
            return
        if header.hop_limit <= 1:
            self.counters.drop("hop_limit")
            return
        out = wire.with_hop_limit(packet, header.hop_limit - 1)
        for p in hops:
            forwards.setdefault(p, []).append(out)
