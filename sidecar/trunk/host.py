"""The libp2p host under the trunk: Ed25519 identity, TCP + WebSocket, Noise or TLS, Yamux.

py-libp2p's defaults also offer SECIO and plaintext security and Mplex, and a
default host accepts a plaintext dialer; here the security and muxer tables
are always passed explicitly, each with exactly one entry. QUIC stays off.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal

import trio
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TMuxerOptions, TProtocol, TSecurityOptions
from libp2p.io.trio import TrioTCPStream
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.security.tls.transport import PROTOCOL_ID as TLS_PROTOCOL_ID
from libp2p.security.tls.transport import TLSTransport
from libp2p.stream_muxer import muxer_multistream
from libp2p.stream_muxer.yamux import yamux as yamux_module
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux, YamuxStream

Security = Literal["noise", "tls"]


def _remote_address_of_ipv6_peers_too() -> None:
    """py-libp2p's TCP stream reports no remote address for an IPv6 peer (it accepts
    only 2-tuple socket names; IPv6 ones have four fields), and the datagram path takes
    the peer's address from there. Read host and port from the socket name instead."""
    original = TrioTCPStream.get_remote_address

    def get_remote_address(self: TrioTCPStream) -> tuple[str, int] | None:
        address = original(self)
        if address is not None:
            return address
        try:
            name = self.stream.socket.getpeername()
        except (AttributeError, OSError):
            return None
        if not isinstance(name, tuple) or len(name) < 2:
            return None
        address = (str(name[0]), int(name[1]))
        self._cached_remote_address = address
        return address

    TrioTCPStream.get_remote_address = get_remote_address  # type: ignore[method-assign]


_remote_address_of_ipv6_peers_too()


def key_pair_from_seed(seed: bytes) -> KeyPair:
    return create_new_key_pair(seed)


def peer_id_of(key_pair: KeyPair) -> str:
    return str(ID.from_pubkey(key_pair.public_key).to_base58())


def security_options(key_pair: KeyPair, security: Security) -> TSecurityOptions:
    if security == "tls":
        return {TLS_PROTOCOL_ID: TLSTransport(key_pair)}
    # The Noise static key is separate from the identity key (libp2p Noise spec);
    # the handshake signs it with the identity key.
    noise_key = create_x25519_key_pair().private_key
    return {NOISE_PROTOCOL_ID: NoiseTransport(key_pair, noise_privkey=noise_key)}


DEFAULT_RECEIVE_WINDOW = yamux_module.DEFAULT_WINDOW_SIZE
RECEIVE_SLACK = 256 * 1024
"""Bytes a peer may have buffered here beyond the receive window it was granted (the
stream's Yamux target window) before its stream is cut off. An honest peer never sends
past its window; the slack only absorbs frames already in flight when a window shrinks."""


class FlowControlViolation(Exception):
    """A peer sent more on a Yamux stream than the receive window it was granted."""


class _Violations:
    """Process-wide count of streams cut off for ignoring the receive window."""

    count = 0


def window_violations() -> int:
    return _Violations.count


class _BoundedBuffer(bytearray):
    """A Yamux stream's receive buffer that refuses to grow past the stream's window.

    py-libp2p only logs a peer that exceeds the receive window and keeps buffering what
    it sends, so a peer ignoring flow control could fill memory while the node layer is
    busy or before the INTRO is read. Refusing raises inside py-libp2p's frame reader,
    which then marks the stream closed for reading: its reader sees the end of the
    stream and the trunk drops it; the connection stays framed (the frame was read).
    """

    muxer: Yamux | None = None
    stream_id = 0

    def extend(self, data: Any) -> None:
        muxer = self.muxer
        stream = muxer.streams.get(self.stream_id) if muxer is not None else None
        window = DEFAULT_RECEIVE_WINDOW
        if stream is not None:
            window = max(stream.target_recv_window, stream.recv_window)
        if len(self) + len(data) > window + RECEIVE_SLACK:
            _Violations.count += 1
            raise FlowControlViolation(
                f"stream {self.stream_id}: {len(self) + len(data)} bytes buffered, window {window}"
            )
        super().extend(data)


class _BoundedBuffers(dict[int, bytearray]):
    def __init__(self, muxer: Yamux) -> None:
        super().__init__()
        self.muxer = muxer

    def __setitem__(self, stream_id: int, buffer: bytearray) -> None:
        bounded = _BoundedBuffer(buffer)
        bounded.muxer = self.muxer
        bounded.stream_id = stream_id
        super().__setitem__(stream_id, bounded)


class BoundedYamux(Yamux):
    """py-libp2p's Yamux whose stream receive buffers hold at most the granted window."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stream_buffers = _BoundedBuffers(self)


def muxer_options() -> TMuxerOptions:
    return {TProtocol(YAMUX_PROTOCOL_ID): BoundedYamux}


def quiet_libp2p_logging() -> None:
    """Keep libp2p below INFO unless LIBP2P_DEBUG asks for its logs.

    libp2p sets its root logger to WARNING but pins the auto-connector's logger
    at INFO, which then reports its state every cycle.
    """
    if os.environ.get("LIBP2P_DEBUG"):
        return
    logging.getLogger("libp2p.network.auto_connector").setLevel(logging.WARNING)


YAMUX_FRAME_FOR_NOISE = 65535 - 16
"""Largest Yamux frame (header included) that fits one Noise transport message."""


def tune_yamux() -> None:
    """Process-wide Yamux settings that roughly double trunk throughput per CPU.

    - py-libp2p cuts writes into 65536-byte Yamux frames; under Noise (at most
      65519 plaintext bytes per message) each frame became two Noise messages,
      two encryptions and two length-prefixed reads. Frames of 65519 bytes fit
      one message. Any Yamux peer accepts smaller frames.
    - PY_YAMUX_RELEASE_ON_READ=0 (py-libp2p's own knob) stops a WINDOW_UPDATE
      after every read; updates then go out per half window, as in go-yamux.
      An explicit setting in the environment wins.
    """
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
    yamux_module.MAX_MESSAGE_SIZE = min(yamux_module.MAX_MESSAGE_SIZE, YAMUX_FRAME_FOR_NOISE)
    # py-libp2p builds its Yamux class by name, whatever class the muxer options give.
    muxer_multistream.Yamux = BoundedYamux  # type: ignore[attr-defined]


def trunk_connection_config() -> ConnectionConfig:
    """Turn off libp2p's own connection upkeep: the trunk decides whom to dial.

    With the default watermarks the auto-connector dials every peerstore entry
    it is not connected to, on a timer and after each disconnect, racing the
    trunk's redial and opening duplicate connections. A target of zero stops
    it; the pruner then only closes connections that carry no stream.
    """
    return ConnectionConfig(min_connections=0, low_watermark=0, high_watermark=0)


def build_host(key_pair: KeyPair, security: Security) -> IHost:
    tune_yamux()
    # listen_addrs is left out on purpose: given, it would pick the transports from
    # the listen addresses only, and a TCP-only listener could not dial a /ws peer.
    return new_host(
        key_pair=key_pair,
        connection_config=trunk_connection_config(),
        sec_opt=security_options(key_pair, security),
        muxer_opt=muxer_options(),
        enable_tcp=True,
        enable_websocket=True,
        enable_quic=False,
    )


async def raise_receive_window(stream: INetStream, size: int) -> int:
    """Grant the peer `size` bytes of Yamux receive window on `stream` at once.

    Yamux starts every stream at 256 KiB and py-libp2p's writer, on an empty
    send window, polls every 10 ms: at 64 KiB records that caps a trunk well
    below 1 Gbit/s until auto-tuning catches up. One WINDOW_UPDATE up front
    removes the stall; the cost is up to `size` bytes buffered per trunk when
    the node layer reads slower than the peer writes. Returns the increment.
    """
    muxed = getattr(stream, "muxed_stream", None)
    if not isinstance(muxed, YamuxStream):
        return 0
    async with muxed.window_lock:
        increment = size - muxed.recv_window
        if increment <= 0:
            return 0
        muxed.recv_window += increment
        muxed.target_recv_window = max(muxed.target_recv_window, size)
    await muxed.send_window_update(increment)
    return increment


WINDOW_POLL_S = 0.01
"""How often a writer facing a closed Yamux window looks again (py-libp2p polls too)."""
MAX_PIECE = 4 * 1024 * 1024
"""Largest single stream write, so the stall deadline measures progress, not one huge write.
Smaller pieces let the scheduler interleave more and cost relays throughput (measured)."""


class TrunkStalled(Exception):
    """The peer accepted no byte for the stall deadline: it stopped reading."""


async def write_within_window(stream: INetStream, data: bytes, *, stall_s: float) -> None:
    """Write `data`, never handing Yamux more than the peer's open window.

    py-libp2p's Yamux writer fails the stream after 5 s without window, whatever the
    cause. Here a peer that grants no window and accepts no byte for `stall_s` is
    stalled (TrunkStalled): it stopped reading, and holding its trunk open would only
    keep its queue full. A slow but moving peer is fine: every accepted piece resets
    the deadline.
    """
    muxed = getattr(stream, "muxed_stream", None)
    total = len(data)
    with memoryview(data) as view:
        pos = 0
        waited_since = trio.current_time()
        while pos < total:
            window = muxed.send_window if isinstance(muxed, YamuxStream) else total
            if window <= 0:
                if trio.current_time() - waited_since >= stall_s:
                    raise TrunkStalled(f"no send window for {stall_s:.0f} s")
                await trio.sleep(WINDOW_POLL_S)
                continue
            end = min(total, pos + window, pos + MAX_PIECE)
            with trio.move_on_after(stall_s) as scope:
                await stream.write(bytes(view[pos:end]) if (pos, end) != (0, total) else data)
            if scope.cancelled_caught:
                raise TrunkStalled(f"a write did not complete in {stall_s:.0f} s")
            pos = end
            waited_since = trio.current_time()
