"""Shared by the private-VLAN tests that run on the simulator's mesh or build a node's
Mvlan by hand: one virtual-clock run of a mesh, counter totals, a hand-built Mvlan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing

from peertap.sidecar import identity
from peertap.sidecar.config import LimitsConfig
from peertap.sidecar.counters import Counters
from peertap.sidecar.private.mvlan import Mvlan
from peertap.sidecar.private.sim import Mesh
from peertap.sidecar.switch.acl import Acl

Send = Callable[[str, list[bytes]], bool]


def run_mesh(fn: Callable[[Mesh], Awaitable[None]], **mesh: Any) -> None:
    """Run `fn` on a Mesh(**mesh, mac_probes=False) under trio's virtual clock."""

    async def main() -> None:
        m = Mesh(mac_probes=False, **mesh)
        async with trio.open_nursery() as nursery:
            m.start(nursery)
            await fn(m)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def total(mesh: Mesh, name: str, *, drops: bool = False) -> int:
    """A counter summed over every member of the mesh (events, or drops)."""
    return sum(
        (x.counters.drops if drops else x.counters.events)[name] for x in mesh.members.values()
    )


def mvlan(
    *,
    relay: bool,
    peers: list[str],
    send: Send = lambda peer, packets: True,
    node: identity.Identity | None = None,
) -> Mvlan:
    """A node's management-VLAN part with open ACL and default limits, on `peers`."""
    return Mvlan(
        identity=node or identity.generate(),
        counters=Counters(),
        hop_limit=8,
        relay=relay,
        acl=Acl(mode="open"),
        limits=LimitsConfig(),
        peers=lambda: list(peers),
        send=send,
    )
