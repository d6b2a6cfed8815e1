"""The UDP socket of the datagram path: GSO on send, GRO on receive, never IP fragments.

- Send: consecutive datagrams of one size (the last of a run may be shorter) to one
  peer go out in one `sendmsg` with `UDP_SEGMENT`; the kernel (or the NIC) cuts them.
- Receive: with `UDP_GRO` the kernel hands over runs of datagrams from one source in
  one `recvmsg`, with the segment size in a control message; `split` cuts them again.
- `IP_PMTUDISC_DO` (and `IPV6_PMTUDISC_DO`) makes the kernel refuse (EMSGSIZE) a
  datagram larger than the route's MTU instead of fragmenting it; the path's real MTU
  is probed (path.py).
- Families: bound to the wildcard (the default), the socket is one dual-stack IPv6
  socket that serves IPv4 peers too, as IPv4-mapped addresses (::ffff:a.b.c.d); a
  kernel without IPv6 gets an IPv4 socket. Bound to one address, it has that
  address's family and reaches peers of that family only (`peer_address`).
The socket is non-blocking: a full send buffer drops, it never waits.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Sequence

UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
UDP_GRO = getattr(socket, "UDP_GRO", 104)
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
IP_MTU = getattr(socket, "IP_MTU", 14)
IPV6_MTU_DISCOVER = getattr(socket, "IPV6_MTU_DISCOVER", 23)
IPV6_PMTUDISC_DO = getattr(socket, "IPV6_PMTUDISC_DO", 2)
IPV6_MTU = getattr(socket, "IPV6_MTU", 24)
WILDCARDS = ("", "0.0.0.0", "::")
"""Hosts that mean "every address": the socket is then dual-stack where IPv6 exists."""
_NO_IPV6 = (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT)
MAX_SEGMENTS = 64
"""Kernel limit on segments per GSO send (UDP_MAX_SEGMENTS)."""
MAX_GSO_BYTES = 65000
"""A GSO send is one IP packet inside the kernel: its payload must stay under 64 KiB."""
RECEIVE_SIZE = 65536
BUFFER_BYTES = 2 * 1024 * 1024
"""Socket buffers (the kernel doubles them): 32 units of 64 KiB; larger ones only add
queueing delay (bufferbloat) under a tunnelled TCP flow."""
_SEGMENT = struct.Struct("=H")
_GRO = struct.Struct("=i")
_CMSG_SPACE = socket.CMSG_SPACE(_GRO.size)

Address = tuple[str, int]


def open_socket(host: str, port: int) -> socket.socket:
    """The bound, non-blocking socket: dual-stack on a wildcard `host` where the kernel
    has IPv6 (IPv4 only where it has not), else of `host`'s family."""
    if host in WILDCARDS:
        try:
            return _open(socket.AF_INET6, "::", port, dual_stack=True)
        except OSError as err:
            if err.errno not in _NO_IPV6:
                raise
        return _open(socket.AF_INET, "0.0.0.0", port, dual_stack=False)
    family = socket.AF_INET6 if address_of(host).version == 6 else socket.AF_INET
    return _open(family, host, port, dual_stack=False)


def _open(family: socket.AddressFamily, host: str, port: int, *, dual_stack: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        _set_buffers(sock)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
        if family == socket.AF_INET or dual_stack:
            # On a dual-stack socket this one governs the IPv4-mapped traffic.
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        sock.setsockopt(socket.IPPROTO_UDP, UDP_GRO, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def address_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """`host` as an address; an IPv4-mapped IPv6 address (how a dual-stack listener
    sees an IPv4 peer) is its IPv4 address. ValueError if it is not an IP address."""
    address = ipaddress.ip_address(host)
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def peer_address(sock: socket.socket, host: str, port: int) -> Address | None:
    """Where `sock` sends to reach `host`:`port`, or None if its family cannot reach it
    (an IPv6 peer from an IPv4-only socket, or the other way round)."""
    address = address_of(host)
    if sock.family == socket.AF_INET:
        return (str(address), port) if address.version == 4 else None
    if address.version == 4:
        if sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
            return None
        return (f"::ffff:{address}", port)
    return (str(address), port)


def _set_buffers(sock: socket.socket) -> None:
    """Buffers for bursts of 64 KiB units. The plain options are capped by the host's
    net.core.[rw]mem_max (often 208 KiB: three units); a node with CAP_NET_ADMIN (it has
    it for its TAP) may exceed the cap."""
    for forced, plain in (
        (getattr(socket, "SO_SNDBUFFORCE", 32), socket.SO_SNDBUF),
        (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF),
    ):
        try:
            sock.setsockopt(socket.SOL_SOCKET, forced, BUFFER_BYTES)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, plain, BUFFER_BYTES)


def port_for(listen: list[str], configured: int | None) -> int:
    """The datagram path's UDP port: the configured one, else the first TCP listen port."""
    if configured is not None:
        return configured
    for addr in listen:
        parts = addr.split("/")
        if "tcp" in parts[:-1]:
            port = parts[parts.index("tcp") + 1]
            if port.isdigit():
                return int(port)
    return 0


def route_mtu(host: str) -> int:
    """The MTU of the local route towards `host` (what the DF setting lets through)."""
    address = address_of(host)
    if address.version == 6:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        level, option = socket.IPPROTO_IPV6, IPV6_MTU
    else:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        level, option = socket.IPPROTO_IP, IP_MTU
    try:
        probe.connect((str(address), 9))
        mtu: int = probe.getsockopt(level, option)
        return mtu
    finally:
        probe.close()


def runs(datagrams: list[bytes]) -> list[list[bytes]]:
    """Split datagrams, in order, into GSO runs: equal sizes, a shorter one may end a run."""
    out: list[list[bytes]] = []
    run: list[bytes] = []
    size = 0
    total = 0
    for d in datagrams:
        n = len(d)
        if run and (
            n > size
            or len(run) >= MAX_SEGMENTS
            or total + n > MAX_GSO_BYTES
            or len(run[-1]) < size  # a shorter datagram already closed the run
        ):
            out.append(run)
            run = []
        if not run:
            size, total = n, 0
        run.append(d)
        total += n
    if run:
        out.append(run)
    return out


def send_datagrams(sock: socket.socket, datagrams: list[bytes], address: Address) -> int:
    """Send datagrams in order, in GSO runs (`runs`); the number refused."""
    if len(datagrams) == 1:  # a lone frame's: the common case at low rates
        return _send(sock, datagrams, 0, address, 1)
    return sum(send_run(sock, run, address) for run in runs(datagrams)) if datagrams else 0


def send_run(sock: socket.socket, run: list[bytes], address: Address) -> int:
    """Send one GSO run; the number of datagrams the kernel refused (buffer full)."""
    if len(run) == 1:
        return _send(sock, run, 0, address, 1)
    return _send(sock, run, len(run[0]), address, len(run))  # one iovec per datagram


def send_fragments(
    sock: socket.socket, parts: Sequence[bytes | memoryview], size: int, address: Address
) -> int:
    """Send datagrams given as (header, piece) buffer pairs, each pair `size` bytes but
    the last, in GSO sends that gather the pairs; the number of datagrams refused."""
    per_send = max(1, min(MAX_SEGMENTS, MAX_GSO_BYTES // size)) * 2
    refused = 0
    for start in range(0, len(parts), per_send):
        chunk = parts[start : start + per_send]
        count = len(chunk) // 2
        refused += _send(sock, chunk, size if count > 1 else 0, address, count)
    return refused


def _send(
    sock: socket.socket,
    buffers: Sequence[bytes | memoryview],
    segment: int,
    address: Address,
    count: int,
) -> int:
    """One send call: `buffers` gathered, cut into `segment`-byte datagrams by the
    kernel (0: they are one datagram); `count` (the datagrams) if the kernel refused."""
    try:
        if segment:
            sock.sendmsg(
                buffers, [(socket.IPPROTO_UDP, UDP_SEGMENT, _SEGMENT.pack(segment))], 0, address
            )
        elif len(buffers) == 1:
            sock.sendto(buffers[0], address)
        else:
            sock.sendmsg(buffers, [], 0, address)
    except BlockingIOError:
        return count
    except OSError as err:
        if err.errno in (
            errno.EMSGSIZE,
            errno.ENOBUFS,
            errno.ECONNREFUSED,
            errno.EHOSTUNREACH,
            errno.ENETUNREACH,
            errno.EPERM,
            errno.EINVAL,
        ):
            return count
        raise
    return 0


def receive(sock: socket.socket) -> tuple[bytes, int, Address] | None:
    """One receive: (bytes, segment size or 0, source) or None when nothing is waiting."""
    try:
        data, ancillary, _flags, source = sock.recvmsg(RECEIVE_SIZE, _CMSG_SPACE)
    except (BlockingIOError, InterruptedError):
        return None
    except ConnectionRefusedError:  # an ICMP error for an earlier send; nothing to read
        return b"", 0, ("", 0)
    segment = 0
    for level, kind, value in ancillary:
        if level == socket.IPPROTO_UDP and kind == UDP_GRO and len(value) >= _GRO.size:
            segment = _GRO.unpack_from(value)[0]
    return data, segment, source


def split(data: bytes, segment: int) -> list[memoryview]:
    """The datagrams of one GRO receive, as views of its buffer (no copies)."""
    view = memoryview(data)
    if segment <= 0 or segment >= len(data):
        return [view]
    return [view[i : i + segment] for i in range(0, len(data), segment)]
