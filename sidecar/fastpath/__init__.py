"""The fast path: per-packet work on threads that block in the kernel, not in trio.

An established data path costs, per packet, a wake-up of the thread waiting for the TAP
or the UDP socket, the Python work (classify, seal or open, route) and one syscall out.
Under trio every wake-up also costs a pass of its scheduler and a task switch. Here one
thread serves the TAP devices (TAP -> seal -> datagram) and the UDP socket (datagram ->
open -> TAP, or forward as a relay): it blocks in epoll and does that work directly.

Concurrency model (docs/operations.md, "Threads of a node"): one lock, `LoopLock`, is
held by the trio thread whenever it runs Python and released only while trio waits for
I/O; a fast-path thread takes it for each batch. So every piece of node state (routes,
keys, replay windows, counters, path stats) is touched by one thread at a time, with no
copies to keep in step, and trio-side code needs no change. What a fast-path thread
cannot do itself (the trunk stream, trio events) it hands to the trio loop.
"""

from .looplock import LoopLock
from .plane import FastPath, enabled

__all__ = ["FastPath", "LoopLock", "enabled"]
