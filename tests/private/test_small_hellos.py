"""Small HELLOs: members name their credential by a digest bound to their key once
receivers can have it. Real PrivateVlan members on the simulator's mesh (signed, encoded
CONTROL packets, relay HELLO caches, virtual clock), plus a relay node's Mvlan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
import trio.testing
from sim_runs import mvlan, run_mesh, total

from peertap.sidecar import identity, stamps, wire
from peertap.sidecar.private import credential_book, envelope
from peertap.sidecar.private import messages as m
from peertap.sidecar.private.lifecycle import PrivateSettings
from peertap.sidecar.private.sim import HOP_LIMIT, Mesh, SimMember

# HELLOs every 2 s: several periodic rounds fit in a short virtual run.
FAST = PrivateSettings(rekey_interval_s=3600.0, member_timeout_s=6.0, epoch_grace_s=10.0)


def run(fn: Callable[[Mesh], Awaitable[None]], *, relays: int) -> None:
    run_mesh(fn, relays=relays, settings=FAST, hop_latency_s=0.002, seed=3)


async def group(mesh: Mesh, size: int) -> list[SimMember]:
    members = [mesh.add() for _ in range(size)]
    assert await mesh.until_converged(30) is not None
    return members


def hellos_in_caches(mesh: Mesh) -> list[m.Hello]:
    return [
        m.Hello.decode(wire.decode_control(p).body) for cache in mesh.caches for p in cache.fresh()
    ]


def inject(mesh: Mesh, signer: identity.Identity, hello: m.Hello, to: list[SimMember]) -> None:
    """A HELLO signed by `signer` reaches `to` (through a relay, as any CONTROL)."""
    mesh._stamp += 1
    packet = envelope.sign(
        signer, hop_limit=HOP_LIMIT, timestamp=mesh._stamp, vlan_id=mesh.vlan_id,
        kind=m.HELLO, body=hello.encode(),
    ).encode()  # fmt: skip
    mesh._schedule(2, wire.decode_control(packet), len(packet), to)


def test_members_send_digests_and_a_joiner_across_a_relay_still_joins_at_once() -> None:
    async def scenario(mesh: Mesh) -> None:
        members = await group(mesh, 7)
        before = total(mesh, "mvlan_hello_digests")
        await trio.sleep(5 * FAST.hello_interval_s)
        # Periodic HELLOs name credentials by digest, and every member resolves them.
        assert total(mesh, "mvlan_hello_digests") > before + 7 * 6
        assert total(mesh, "mvlan_hello_unresolved", drops=True) == 0
        # The relays keep HELLOs with whole credentials for joiners: the committer's.
        cached = hellos_in_caches(mesh)
        assert cached and all(h.credential for h in cached)
        # A joiner behind the other relay hears of the group at once (far less than a
        # HELLO interval) and is welcomed; it founds nothing.
        joiner = mesh.add()
        assert joiner.relay != members[0].relay
        assert await mesh.until_converged(FAST.hello_interval_s / 2) is not None
        assert joiner.counters.events["mvlan_groups_founded"] == 0
        # Once in, it resolves the others' digests from the group's tree and stays in.
        await trio.sleep(3 * FAST.hello_interval_s)
        assert joiner.counters.events["mvlan_hello_digests"] > 0
        assert mesh.converged() and len(mesh.running()) == 8

    run(scenario, relays=2)


def test_a_hello_naming_another_members_credential_by_digest_is_refused() -> None:
    """Mallory signs HELLOs naming Bob's credential: by Bob's digest, and by the digest Bob's
    credential would have under Mallory's key. Neither counts: members do not take her as
    live nor follow the huge group she claims, and count the refusals."""

    async def scenario(mesh: Mesh) -> None:
        members = await group(mesh, 4)
        bob = members[1]
        bobs = bob.pv.credential
        mallory = identity.generate()
        tag, epoch, _, _ = members[0].pv.view() or (b"", 0, b"", 0)
        before = total(mesh, "mvlan_hello_unresolved", drops=True)
        moves = total(mesh, "mvlan_group_moves") + total(mesh, "mvlan_resyncs")
        for claimed in (
            credential_book.digest(bob.node.public_bytes, bobs),
            credential_book.digest(mallory.public_bytes, bobs),
        ):
            other_group = m.Hello(b"\x01" * 16, 1, b"\x02" * 16, 10_000, b"", claimed)
            own_group = m.Hello(tag, epoch + 5, b"\x00" * 16, 4, b"", claimed)
            for hello in (other_group, own_group):
                inject(mesh, mallory, hello, members)
        await trio.sleep(3 * FAST.hello_interval_s)
        # Each of the 4 members refused each of the 4 HELLOs, and nothing moved.
        assert total(mesh, "mvlan_hello_unresolved", drops=True) == before + 4 * 4
        assert total(mesh, "mvlan_group_moves") + total(mesh, "mvlan_resyncs") == moves
        assert mesh.converged() and len({x.pv.view() for x in members}) == 1
        assert (members[0].pv.view() or (0, 0, 0, 0))[3] == 4

    run(scenario, relays=1)


def test_a_malformed_digest_is_a_counted_drop() -> None:
    async def scenario(mesh: Mesh) -> None:
        members = await group(mesh, 2)
        mallory = identity.generate()
        head = m.Hello(b"\x01" * 16, 1, b"\x02" * 16, 3, b"{}").encode()[:-2]
        for bad in (head + b"\x00", head + b"\x00" + b"\x07" * 15, head + b"\x00" * 18):
            mesh._stamp += 1
            packet = envelope.sign(
                mallory, hop_limit=HOP_LIMIT, timestamp=mesh._stamp, vlan_id=mesh.vlan_id,
                kind=m.HELLO, body=bad,
            ).encode()  # fmt: skip
            mesh._schedule(2, wire.decode_control(packet), len(packet), members)
        await trio.sleep(1)
        assert total(mesh, "mvlan_malformed", drops=True) == 3 * 2
        assert mesh.converged()

    run(scenario, relays=1)


def test_a_relay_keeps_answering_joiners_with_a_full_hello_after_digests_arrive() -> None:
    relay = mvlan(relay=True, peers=["p1", "p2"])
    member, joiner = identity.generate(), identity.generate()
    tag, vlan = b"\x01" * 16, b"\x0a" * 16

    def packet(signer: identity.Identity, hello: m.Hello) -> bytes:
        return envelope.sign(
            signer, hop_limit=5, timestamp=stamps.now_us(), vlan_id=vlan, kind=m.HELLO,
            body=hello.encode(),
        ).encode()  # fmt: skip

    full = packet(member, m.Hello(tag, 3, b"\x05" * 16, 7, b'{"a":1}'))
    small = packet(member, m.Hello(tag, 3, b"\x05" * 16, 7, b"", b"\x09" * 16))
    relay.on_control("p1", full, {})
    relay.on_control("p1", small, {})
    floods: dict[str, list[bytes]] = {}
    relay.on_control("p2", packet(joiner, m.Hello(m.NO_GROUP, 0, bytes(16), 0, b"{}")), floods)
    assert floods["p2"] == [full]


def test_a_digest_resolves_only_for_the_signer_its_credential_was_verified_for() -> None:
    book = credential_book.CredentialBook()
    bob, mallory = identity.generate().public_bytes, identity.generate().public_bytes
    cred = b'{"bob":1}'
    verified = object()  # what the book hands back is what it was given
    book.learn(bob, cred, verified)  # type: ignore[arg-type]
    assert book.lookup(bob, credential_book.digest(bob, cred)) is verified
    assert book.lookup(mallory, credential_book.digest(bob, cred)) is None
    assert book.lookup(mallory, credential_book.digest(mallory, cred)) is None
