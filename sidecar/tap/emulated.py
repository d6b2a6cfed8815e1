"""A TUN interface that behaves as a TAP towards the VLAN (interface mode "tun").

It offers the same calls as TapDevice (`fd`, `read_batch`, `write`, `close`), but
reads IP packets from a kernel TUN and turns them into Ethernet units with the
L2 emulator, and the other way round. Units the emulator must send on its own
(ARP replies and requests, neighbour advertisements, packets released once an
address resolved) wait in `outbox` for the node to send.

The addresses it answers for are the TUN's own as the kernel has them
(addresses.py): the configured one, the kernel's link-local, SLAAC and DHCP ones and
any added later, followed by `follow_addresses` for as long as the TUN lives.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import trio

from ..switch.l2emu import L2Emulator
from .addresses import AddressWatch, interface_addresses
from .device import TapDevice, TapSettings

log = logging.getLogger("peertap.tap")

MAX_OUTBOX = 256


class EmulatedTap:
    def __init__(self, settings: TapSettings) -> None:
        self.settings = settings
        self._tun = TapDevice(replace(settings, tun=True))
        self.fd = self._tun.fd
        self.mode = f"tun+l2-emulation ({self._tun.mode})"
        # Subscribe before the first dump, so no change falls between the two.
        self._watch = AddressWatch(settings.name)
        self.addresses = interface_addresses(settings.name)
        self.emulator = L2Emulator(mac=settings.mac, addresses=self.addresses)
        self.outbox: list[bytes] = []

    async def follow_addresses(self) -> None:
        """Keep the emulator's addresses equal to the TUN's, until cancelled."""
        while True:
            await trio.lowlevel.wait_readable(self._watch.fd)
            self._watch.drain()
            now = interface_addresses(self.settings.name)
            if now != self.addresses:
                log.info("tun %s addresses: %s", self.settings.name, ", ".join(now) or "none")
                self.addresses = now
                self.emulator.set_addresses(now)

    def read_batch(self, limit: int) -> list[bytes]:
        units: list[bytes] = []
        for packet in self._tun.read_batch(limit):
            units.extend(self.emulator.from_tun(packet))
        return units

    def write(self, unit: bytes) -> bool:
        packet, replies = self.emulator.from_vlan(unit)
        if replies and len(self.outbox) < MAX_OUTBOX:
            self.outbox.extend(replies[: MAX_OUTBOX - len(self.outbox)])
        if packet is None:
            return True  # consumed here (ARP, NDP) or not for this station
        return self._tun.write(packet)

    def counts(self) -> dict[str, int]:
        return {**self._tun.counts(), "l2emu_dropped": self.emulator.dropped}

    def take_outbox(self) -> list[bytes]:
        out, self.outbox = self.outbox, []
        return out

    def close(self) -> None:
        self._watch.close()
        self._tun.close()
