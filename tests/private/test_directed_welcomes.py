"""Welcomes travel toward their joiners only (DIRECTED), by routes relays learn from the
trunks each node's own packets come in on; unknown or stale routes fall back to flooding.
Real PrivateVlan members on the simulator's mesh (virtual clock), and a relay's Mvlan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import trio
import trio.testing
from sim_runs import mvlan, run_mesh

from peertap.sidecar import identity, stamps, wire
from peertap.sidecar.private import envelope
from peertap.sidecar.private import messages as m
from peertap.sidecar.private.lifecycle import PrivateSettings
from peertap.sidecar.private.mvlan import Mvlan
from peertap.sidecar.private.sim import Mesh, SimMember

# HELLOs only every 100 s: nothing periodic rescues a lost Welcome within these runs.
SLOW = PrivateSettings(rekey_interval_s=3600.0, member_timeout_s=300.0, epoch_grace_s=10.0)


def run(fn: Callable[[Mesh], Awaitable[None]], *, hop_latency_s: float = 0.002) -> None:
    run_mesh(fn, relays=2, settings=SLOW, hop_latency_s=hop_latency_s, seed=5)


def events(members: Sequence[SimMember], name: str) -> int:
    return sum(x.counters.events[name] for x in members)


async def group(mesh: Mesh, size: int) -> list[SimMember]:
    members = [mesh.add() for _ in range(size)]
    assert await mesh.until_converged(25) is not None
    await trio.sleep(1)  # the last HELLOs and answers settle
    return members


def test_a_welcome_reaches_its_joiner_and_no_other_member() -> None:
    async def scenario(mesh: Mesh) -> None:
        members = await group(mesh, 30)
        rx = {x.name: x.rx_bytes for x in members}
        joiner = mesh.add()
        assert await mesh.until_converged(5) is not None
        welcome_size = 30 * 700  # the tree it carries: about 700-820 bytes per member
        got = {x.name: x.rx_bytes - rx[x.name] for x in members}
        # Every member received the COMMIT (and HELLOs), none the Welcome.
        assert max(got.values()) < welcome_size, got
        assert joiner.rx_bytes > welcome_size
        assert mesh.directed_routed > 0 and mesh.directed_flooded == 0
        assert events(members, "mvlan_welcomes_reflooded") == 0

    run(scenario)


def test_a_welcome_sent_along_a_stale_route_is_flooded_again_and_the_joiner_gets_in() -> None:
    """The joiner's trunk moves to the committer's relay after it offered its KeyPackage:
    the other relay still has the old route and the Welcome sent along it is lost. The
    committer, not hearing its joiner, floods the Welcome again."""

    async def scenario(mesh: Mesh) -> None:
        members = await group(mesh, 6)
        (committer,) = [x for x in members if x.pv.status()["committer"]]
        offered = trio.Event()

        def watch(sender: SimMember, msgs: Sequence[tuple[int, bytes]]) -> bool:
            if sender.name == joiner.name and any(k == m.KEYPACKAGE for k, _ in msgs):
                offered.set()
            return False

        mesh.refuse = watch
        joiner = mesh.add()
        joiner.relay = 1 - committer.relay
        await offered.wait()
        joiner.relay = committer.relay  # its KeyPackage is on its way (1 s per hop)
        assert await mesh.until_converged(30) is not None
        assert joiner.pv.view() is not None
        assert committer.counters.events["mvlan_welcomes_reflooded"] >= 1

    run(scenario, hop_latency_s=1.0)


def _relay(peers: list[str]) -> Mvlan:
    return mvlan(relay=True, peers=peers)


def _packet(signer: identity.Identity, kind: int, body: bytes) -> bytes:
    return envelope.sign(
        signer, hop_limit=5, timestamp=stamps.now_us(), vlan_id=b"\x0a" * 16, kind=kind,
        body=body,
    ).encode()  # fmt: skip


def test_a_relay_sends_a_directed_message_only_toward_a_known_destination() -> None:
    peers = ["p1", "p2", "p3", "p4"]
    relay = _relay(peers)
    joiner, committer, stranger = identity.generate(), identity.generate(), identity.generate()
    hello = m.Hello(m.NO_GROUP, 0, bytes(16), 0, b"{}").encode()
    relay.on_control("p2", _packet(joiner, m.HELLO, hello), {})  # learned: joiner behind p2
    welcome = m.EpochMessage(b"\x01" * 16, 1, b"\x02" * 40).encode()

    def sent_to(destinations: tuple[bytes, ...]) -> set[str]:
        floods: dict[str, list[bytes]] = {}
        directed = m.Directed(destinations, m.WELCOME, welcome).encode()
        relay.on_control("p1", _packet(committer, m.DIRECTED, directed), floods)
        return set(floods)

    assert sent_to((joiner.public_bytes,)) == {"p2"}
    # A destination without a route: flooded (but not back).
    assert sent_to((joiner.public_bytes, stranger.public_bytes)) == {"p2", "p3", "p4"}
    # The trunk the route points to went down: flooded over those that are up.
    peers.remove("p2")
    assert sent_to((joiner.public_bytes,)) == {"p3", "p4"}
    assert relay.counters.events["control_directed_routed"] == 1
    assert relay.counters.events["control_directed_flooded"] == 2


def test_a_malformed_directed_message_is_a_counted_drop_at_members() -> None:
    async def scenario(mesh: Mesh) -> None:
        members = await group(mesh, 2)
        mallory = identity.generate()
        key = members[0].node.public_bytes
        welcome = m.EpochMessage(b"\x01" * 16, 1, b"\x02" * 8).encode()
        bad = [
            b"",
            bytes([0]) + bytes([m.WELCOME]) + welcome,  # no destination
            bytes([1]) + key[:20],  # cut short
            bytes([1]) + key + bytes([m.HELLO]) + welcome,  # only Welcomes are directed
            bytes([1]) + key + bytes([m.DIRECTED]) + welcome,  # nor nested
        ]
        before = sum(x.counters.drops["mvlan_malformed"] for x in members)
        for body in bad:
            mesh._stamp += 1
            packet = envelope.sign(
                mallory, hop_limit=5, timestamp=mesh._stamp, vlan_id=mesh.vlan_id,
                kind=m.DIRECTED, body=body,
            ).encode()  # fmt: skip
            mesh._schedule(2, wire.decode_control(packet), len(packet), members)
        await trio.sleep(1)
        assert sum(x.counters.drops["mvlan_malformed"] for x in members) == before + 2 * len(bad)
        assert mesh.converged()

    run(scenario)
