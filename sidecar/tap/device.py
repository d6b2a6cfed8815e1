"""The OS side of a member port: a Linux TAP device, read and written in batches.

Offloads are probed once at open: with IFF_VNET_HDR and TUNSETOFFLOAD
(CSUM|TSO4|TSO6|TSO_ECN) the kernel hands us TCP super-frames of up to 64 KiB
with a 10-byte virtio_net_hdr in front, which is what makes a Python data plane
fast. Without offloads every frame is at most MTU-sized and gets a zero header,
so the wire format is the same either way. The mode in use is logged.

UDP super-frames (GSO type UDP_L4, USO) are newer: a kernel that accepts USO4|USO6 in
TUNSETOFFLOAD (Linux 6.2 on) also takes them in writes, and hands us those of local
applications that use UDP GSO; on an older kernel they are segmented here before
writing, as without offloads, since its TAP would refuse them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
from dataclasses import dataclass

import pytun
from pyroute2 import IPRoute

from .segment import GSO_ECN, GSO_UDP_L4, SegmentError, checksum, plain_frames

log = logging.getLogger("peertap.tap")

VNET_HDR_LEN = 10
ZERO_VNET_HDR = bytes(VNET_HDR_LEN)
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN = 0x01, 0x02, 0x04, 0x08
OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN
TUN_F_USO4, TUN_F_USO6 = 0x20, 0x40
READ_SIZE = VNET_HDR_LEN + 65535 + 14 + 4


class TapError(Exception):
    """The TAP device could not be created or configured."""


@dataclass(frozen=True)
class TapSettings:
    name: str
    mtu: int
    mac: bytes
    address: str | None
    offload: bool
    tun: bool = False  # a TUN (IP packets) instead of a TAP (Ethernet frames)


class TapDevice:
    """One TAP (or TUN) interface. Reads and writes carry a virtio_net_hdr in front of
    each frame (each IP packet for a TUN)."""

    def __init__(self, settings: TapSettings) -> None:
        self.settings = settings
        kind = "TUN" if settings.tun else "TAP"
        flags = (pytun.IFF_TUN if settings.tun else pytun.IFF_TAP) | pytun.IFF_NO_PI
        try:
            dev = pytun.TunTapDevice(
                name=settings.name, flags=flags | (pytun.IFF_VNET_HDR if settings.offload else 0)
            )
        except pytun.Error as err:
            raise TapError(f"cannot create {kind} {settings.name}: {err}") from err
        self._dev = dev
        self.fd: int = dev.fileno()
        self.uso = False  # set by _enable_offload when the kernel takes UDP super-frames
        self.vnet = settings.offload and self._enable_offload()
        if settings.offload and not self.vnet:
            # The device was opened with IFF_VNET_HDR; reopen without it.
            dev.close()
            dev = pytun.TunTapDevice(name=settings.name, flags=flags)
            self._dev, self.fd = dev, dev.fileno()
        self.mode = (
            ("vnet-hdr+tso+uso" if self.uso else "vnet-hdr+tso")
            if self.vnet
            else "plain+software-gso"
        )
        # Without offloads, units from peers are segmented here (segment.py).
        self.stats: dict[str, int] = {"segmented_units": 0, "segments": 0, "refused_units": 0}
        self.refused: dict[str, int] = {}
        os.set_blocking(self.fd, False)
        self._configure()
        log.info("%s %s up: mode=%s mtu=%d", kind.lower(), settings.name, self.mode, settings.mtu)

    def _enable_offload(self) -> bool:
        try:
            fcntl.ioctl(self.fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
            fcntl.ioctl(self.fd, TUNSETOFFLOAD, OFFLOADS)
        except OSError as err:
            log.warning("tap %s: offloads unavailable (%s); plain frames", self.settings.name, err)
            return False
        try:
            fcntl.ioctl(self.fd, TUNSETOFFLOAD, OFFLOADS | TUN_F_USO4 | TUN_F_USO6)
            self.uso = True
        except OSError:
            pass  # a kernel before USO: UDP super-frames are segmented before writing
        return True

    def _configure(self) -> None:
        s = self.settings
        try:
            with IPRoute() as ipr:
                idx = ipr.link_lookup(ifname=s.name)[0]
                if s.tun:
                    ipr.link("set", index=idx, mtu=s.mtu)
                else:
                    mac = ":".join(f"{b:02x}" for b in s.mac)
                    ipr.link("set", index=idx, address=mac, mtu=s.mtu)
                if s.address:
                    addr, prefix = s.address.split("/")
                    ipr.addr("add", index=idx, address=addr, prefixlen=int(prefix))
                ipr.link("set", index=idx, state="up")
        except Exception as err:  # pyroute2 raises NetlinkError and plain OSErrors
            self.close()
            raise TapError(f"cannot configure {s.name}: {err}") from err

    def read_batch(self, limit: int) -> list[bytes]:
        """Up to `limit` frames, each with a virtio_net_hdr in front; [] when none wait."""
        out: list[bytes] = []
        fd, vnet = self.fd, self.vnet
        for _ in range(limit):
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                break
            out.append(data if vnet else ZERO_VNET_HDR + data)
        return out

    def write(self, unit: bytes) -> bool:
        """Write one unit (virtio_net_hdr + frame); False if it was dropped.

        Without offloads a GSO super-frame is segmented in software first, and a
        partial checksum completed; a unit that cannot be is refused and counted.
        """
        if self.vnet and (self.uso or len(unit) < 2 or unit[1] & ~GSO_ECN != GSO_UDP_L4):
            return self._write_one(unit)
        try:
            frames = plain_frames(unit, l2=not self.settings.tun)
        except SegmentError as err:
            self.stats["refused_units"] += 1
            self.refused[err.reason] = self.refused.get(err.reason, 0) + 1
            return False
        if len(frames) > 1:
            self.stats["segmented_units"] += 1
            self.stats["segments"] += len(frames)
        ok = True
        for frame in frames:
            ok = self._write_one(ZERO_VNET_HDR + frame if self.vnet else frame) and ok
        return ok

    def _write_one(self, data: bytes) -> bool:
        try:
            os.write(self.fd, data)
        except BlockingIOError:
            return False
        except OSError as err:
            # EINVAL/EIO: the kernel refused the frame (bad GSO metadata from a peer).
            log.debug("tap %s: write refused: %s", self.settings.name, err)
            return False
        return True

    def counts(self) -> dict[str, int]:
        """Software segmentation counts and refused units by reason (refused_<reason>)."""
        return {**self.stats, **{f"refused_{k}": v for k, v in sorted(self.refused.items())}}

    def close(self) -> None:
        if self._dev is not None:
            self._dev.close()
            self._dev = None


def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement checksum."""
    return checksum(data)
