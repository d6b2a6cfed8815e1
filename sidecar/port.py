"""A member port: one VLAN on this node, between its TAP and the mesh.

Outgoing (TAP -> mesh), per batch read from the TAP: a burst of one UDP flow becomes
one GSO super-frame (tap/coalesce.py); then per unit:
  learn source MAC -> snoop IGMP/MLD -> classify destination -> token ->
  fragment if too large, bundle consecutive small ones (bundle.py) -> seal ->
  (token, packet) for the forwarder
Incoming (mesh -> TAP):
  keys by MLS-ID -> replay check -> decrypt -> reassemble or split a bundle -> TAP

The port knows nothing about trunks or peers; the forwarder (node.py) routes
what it produces and hands it what the mesh delivers for this VLAN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from . import bundle, fragment, vft, wire
from .counters import Counters
from .crypto.frames import FrameOpener, FrameSealer, OpenError
from .crypto.keys import KeyProvider
from .switch.classify import Dest, classify, snoop
from .switch.local import LocalPort
from .tap.coalesce import coalesce
from .tap.device import VNET_HDR_LEN

MIN_UNIT = VNET_HDR_LEN + 14


class FrameSink(Protocol):
    """Where decrypted units go: the TAP device, or anything with the same `write`."""

    def write(self, unit: bytes) -> bool: ...


@dataclass(frozen=True)
class PortInfo:
    label: str
    vlan_id: bytes
    interface: str
    mac: bytes
    security: str


class VlanPort:
    def __init__(
        self,
        *,
        info: PortInfo,
        sink: FrameSink,
        keys: KeyProvider,
        hop_limit: int,
        counters: Counters,
    ) -> None:
        self.info = info
        self.vlan_id = info.vlan_id
        self.sink = sink
        self.keys = keys
        self.hop_limit = hop_limit
        self.counters = counters
        self.sealer = FrameSealer(info.vlan_id, keys)
        self.opener = FrameOpener(keys)
        # Units given up before they complete count as drops (fragment_expired/_evicted).
        self.reassembler = fragment.Reassembler(on_give_up=counters.drop)
        self.local = LocalPort(own_mac=info.mac)
        self._tokens = vft.TokenCache(info.vlan_id, keys.current().vft_salt)
        self._older: dict[bytes, vft.TokenCache] = {}
        self.wanted: set[bytes] = set()
        self.refresh_wanted()

    @property
    def tokens(self) -> vft.TokenCache:
        salt = self.keys.current().vft_salt
        if salt != self._tokens.salt:
            self._tokens = vft.TokenCache(self.vlan_id, salt)
            self.refresh_wanted()
        return self._tokens

    def set_mac(self, mac: bytes) -> None:
        """Our MAC changed (a private VLAN re-rolled it after a collision)."""
        self.info = replace(self.info, mac=mac)
        self.local.own_mac = mac
        self.refresh_wanted()

    def refresh_tokens(self) -> None:
        """Follow the keys now (an epoch changed, a secret rotated), not at the next send."""
        _ = self.tokens
        self.refresh_wanted()

    def refresh_wanted(self) -> bool:
        """Recompute the wanted token set; True if it changed (re-announce).

        It holds our tokens under every epoch the keys still accept, so a peer that
        still sends under an older key (it has not processed a commit or rotated its
        secret yet) reaches us until that epoch's grace window ends."""
        wanted = self.local.tokens(self._tokens)
        caches = {self._tokens.salt: self._tokens}
        for keys in self.keys.accepted():
            salt = keys.vft_salt
            if salt not in caches:
                cache = self._older.get(salt) or vft.TokenCache(self.vlan_id, salt)
                caches[salt] = cache
                wanted |= self.local.tokens(cache)
        self._older = caches
        changed = wanted != self.wanted
        self.wanted = wanted
        return changed

    def outgoing(
        self, units: list[bytes], *, reachable: Callable[[bytes, bytes], bool]
    ) -> tuple[list[tuple[bytes, bytes]], bool]:
        """Seal units read from the TAP: ([(token, packet)], wanted-set changed)."""
        out: list[tuple[bytes, bytes]] = []
        read = len(units)
        if read > 1:
            # A burst of one UDP flow crosses as one super-frame (tap/coalesce.py).
            units, joined = coalesce(units)
            if joined:
                self.counters.inc("coalesced_datagrams", joined)
        tokens = self.tokens
        learned = False
        # Consecutive small units with one token and one destination: sealed as a bundle.
        run: list[bytes] = []
        run_token = run_dst = b""
        run_bytes = 0
        for unit in units:
            if len(unit) < MIN_UNIT:
                self.counters.drop("tap_short")
                continue
            dst = unit[VNET_HDR_LEN : VNET_HDR_LEN + 6]
            src = unit[VNET_HDR_LEN + 6 : VNET_HDR_LEN + 12]
            if self.local.learn_source(src):
                learned = True
            cls = classify(dst)
            if cls is Dest.UNICAST:
                token = tokens.unicast(dst)
                if not reachable(self.vlan_id, token):
                    # Unknown unicast is flooded, as a switch does.
                    token = tokens.broadcast
                    self.counters.inc("unknown_unicast")
            elif cls is Dest.FLOOD:
                token = tokens.broadcast
                if dst[0] != 0xFF:
                    learned |= self._snoop(unit)
            else:
                learned |= self._snoop(unit)
                token = tokens.multicast(dst)
                if not reachable(self.vlan_id, token):
                    self.counters.inc("multicast_no_subscriber")
                    continue
            size = len(unit)
            if run and (
                token != run_token
                or dst != run_dst
                or size > bundle.MAX_UNIT
                or run_bytes + bundle.LENGTH_LEN + size > bundle.MAX_BYTES
            ):
                self._seal_run(run, run_token, run_dst, out)
                run = []
            if size <= bundle.MAX_UNIT:
                if not run:
                    run_token, run_dst, run_bytes = token, dst, 0
                run.append(unit)
                run_bytes += bundle.LENGTH_LEN + size
                continue
            for packet in self._seal(unit, token, dst):
                out.append((token, packet))
        if run:
            self._seal_run(run, run_token, run_dst, out)
        self.counters.inc("tap_rx", read)
        changed = self.refresh_wanted() if learned else False
        return out, changed

    def _seal_run(
        self, run: list[bytes], token: bytes, dst: bytes, out: list[tuple[bytes, bytes]]
    ) -> None:
        """Seal small units kept back for a bundle: one alone as ever, two or more as
        one bundle (MAX_BYTES leaves room for any sender-tag trailer in one packet)."""
        if len(run) == 1:
            for packet in self._seal(run[0], token, dst):
                out.append((token, packet))
            return
        packet = self.sealer.seal(
            vft=token,
            plaintext=bundle.join(run),
            hop_limit=self.hop_limit,
            flags=wire.FLAG_BUNDLE,
            dst=dst,
        )
        out.append((token, packet))
        self.counters.inc("bundled_units", len(run))

    def _snoop(self, unit: bytes) -> bool:
        joins, leaves = snoop(unit[VNET_HDR_LEN:])
        changed = False
        for g in joins:
            changed |= self.local.join(g)
        for g in leaves:
            changed |= self.local.leave(g)
        return changed

    def _seal(self, unit: bytes, token: bytes, dst: bytes) -> list[bytes]:
        # Sender-bound packets end in a tag trailer: fragment early enough to fit it.
        binding = self.keys.current().binding
        room = fragment.MAX_PLAINTEXT - (0 if binding is None else binding.trailer_for(dst))
        if len(unit) <= room:
            return [self.sealer.seal(vft=token, plaintext=unit, hop_limit=self.hop_limit, dst=dst)]
        try:
            pieces = fragment.split(unit, max_plaintext=room)
        except fragment.FragmentError as err:
            self.counters.drop(err.reason)
            return []
        self.counters.inc("fragmented")
        return [
            self.sealer.seal(
                vft=token, plaintext=p, hop_limit=self.hop_limit, flags=wire.FLAG_FRAGMENT, dst=dst
            )
            for p in pieces
        ]

    def _source_bound(self, unit: bytes) -> bool:
        """In a sender-bound epoch, the frame's source MAC must belong to the sender's leaf
        (crypto/senders.py): no member can send as another's MAC."""
        leaf, binding = self.opener.sender_leaf, self.opener.sender_binding
        if leaf is None or binding is None:
            return True
        return binding.mac_ok(leaf, unit[VNET_HDR_LEN + 6 : VNET_HDR_LEN + 12])

    def deliver(self, packet: bytes | memoryview, header: wire.DataHeader) -> bool:
        """Decrypt a packet for this VLAN and write it to the TAP; False if dropped."""
        try:
            unit = self.opener.open(packet, header)
        except OpenError as err:
            self.counters.drop(err.reason)
            return False
        if header.flags & wire.FLAG_BUNDLE:
            try:
                units = bundle.split(unit)
            except bundle.BundleError as err:
                self.counters.drop(err.reason)
                return False
            return all([self._write(u) for u in units])
        if header.flags & wire.FLAG_FRAGMENT:
            try:
                whole = self.reassembler.add(unit)
            except fragment.FragmentError as err:
                self.counters.drop(err.reason)
                return False
            if whole is None:
                return True
            unit = whole
        return self._write(unit)

    def _write(self, unit: bytes) -> bool:
        """The last checks of a decrypted unit, then the TAP; False if dropped."""
        if len(unit) < MIN_UNIT:
            self.counters.drop("inner_short")
            return False
        if not self._source_bound(unit):
            self.counters.drop("sender_mac")
            return False
        if not self.sink.write(unit):
            self.counters.drop("tap_write")
            return False
        self.counters.inc("tap_tx")
        return True
