"""Private VLAN groups in one process: real PrivateVlan objects, real MLS, real signed
CONTROL packets (encoded, flooded to every other member, decoded, verified), on trio's
virtual clock so member timeouts pass instantly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from peertap.sidecar import identity, ids, wire
from peertap.sidecar.counters import Counters
from peertap.sidecar.crypto.frames import FrameOpener, FrameSealer, OpenError
from peertap.sidecar.crypto.mls_keys import MlsKeyProvider
from peertap.sidecar.private import authority, envelope
from peertap.sidecar.private.lifecycle import PrivateSettings
from peertap.sidecar.private.macprobe import MacClaim
from peertap.sidecar.private.messages import MACPROBE
from peertap.sidecar.private.vlan import PrivateVlan

AUTH = identity.generate()
VLAN = ids.vlan_id(AUTH.public_bytes, "lab")
SETTINGS = PrivateSettings(rekey_interval_s=3600.0, member_timeout_s=3.0, epoch_grace_s=1.0)


def credential(
    node: identity.Identity, *, signer: identity.Identity = AUTH, days: float = 1
) -> bytes:
    now = dt.datetime.now(dt.UTC)
    return authority.issue(
        authority=signer,
        member_identity=node.public_hex[:8],
        member_key=node.public_bytes,
        vlan_id=VLAN,
        issued=now - dt.timedelta(days=2),
        expires=now + dt.timedelta(days=days),
    ).encode()


@dataclass
class Member:
    name: str
    pv: PrivateVlan
    keys: MlsKeyProvider
    counters: Counters
    partition: int = 0
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    @property
    def running(self) -> bool:
        return not self.scope.cancel_called


class Mvlan:
    """Every running member hears every other running member of its partition."""

    def __init__(self, settings: PrivateSettings = SETTINGS) -> None:
        self.settings = settings
        self.members: dict[str, Member] = {}
        self.sequence = 0
        self.sent: list[tuple[int, bytes]] = []  # (kind, body) of every CONTROL sent

    def add(
        self,
        name: str,
        *,
        cred: Callable[[identity.Identity], bytes] = credential,
        node: identity.Identity | None = None,
        reload: Callable[[], bytes | None] = lambda: None,
        mac: bytes | None = None,
        derived_mac: bool = True,
    ) -> Member:
        node = node or identity.generate()
        claim = None
        if mac is not None:
            claim = MacClaim(public=node.public_bytes, vlan_id=VLAN, mac=mac, derived=derived_mac)
        keys = MlsKeyProvider(
            vlan_id=VLAN, grace_s=self.settings.epoch_grace_s, clock=trio.current_time
        )
        counters = Counters()
        pv = PrivateVlan(
            vlan_id=VLAN,
            creator=AUTH.public_bytes,
            node=node,
            credential=cred(node),
            settings=self.settings,
            keys=keys,
            emit=self._emitter(name, node),
            connected=lambda: True,
            on_epoch=lambda: None,
            counters=counters,
            reload=reload,
            clock=trio.current_time,
            mac=claim,
        )
        member = self.members[name] = Member(name, pv, keys, counters)
        return member

    def _emitter(
        self, name: str, node: identity.Identity
    ) -> Callable[[bytes, Sequence[tuple[int, bytes]]], Awaitable[bool]]:
        async def emit(vlan_id: bytes, messages: Sequence[tuple[int, bytes]]) -> bool:
            for kind, body in messages:
                self.sequence += 1
                self.sent.append((kind, body))
                packet = envelope.sign(
                    node, hop_limit=8, timestamp=self.sequence,
                    vlan_id=vlan_id, kind=kind, body=body,
                ).encode()  # fmt: skip
                sender = self.members[name]
                for other in self.members.values():
                    if other is sender or not other.running or other.partition != sender.partition:
                        continue
                    msg = wire.decode_control(packet)
                    assert envelope.verify(msg)
                    other.pv.on_control(msg)
            return True

        return emit

    async def start(self, nursery: trio.Nursery, member: Member) -> None:
        async def run() -> None:
            with member.scope:
                await member.pv.run()

        nursery.start_soon(run)
        await trio.sleep(0)

    def stop(self, member: Member) -> None:
        member.scope.cancel()


def views(members: list[Member]) -> set[tuple[int, bytes, int]]:
    return {
        (m.keys.current().epoch, m.keys.current().mls_id, m.pv.status()["members"]) for m in members
    }


async def group_of(net: Mvlan, nursery: trio.Nursery, size: int) -> list[Member]:
    """`size` members m0.. started on `net` and converged into one group."""
    members = [net.add(f"m{i}") for i in range(size)]
    for m in members:
        await net.start(nursery, m)
    await converged(members, size)
    return members


async def converged(members: list[Member], size: int, *, timeout: float = 120.0) -> None:
    with trio.fail_after(timeout):
        while True:
            v = views(members)
            if len(v) == 1 and next(iter(v))[2] == size and all(m.keys.joined for m in members):
                return
            await trio.sleep(0.25)


def run_virtual(fn: Callable[[], Awaitable[None]]) -> None:
    trio.run(fn, clock=trio.testing.MockClock(autojump_threshold=0))


def test_five_members_form_one_group_and_agree_on_the_epoch() -> None:
    async def main() -> None:
        net = Mvlan()
        async with trio.open_nursery() as nursery:
            members = await group_of(net, nursery, 5)
            epoch = members[0].keys.current().epoch
            assert epoch >= 1
            assert sum(m.pv.status()["committer"] for m in members) == 1
            nursery.cancel_scope.cancel()

    run_virtual(main)


@pytest.mark.parametrize(
    ("bad_credential", "reason"),
    [
        (lambda n: credential(n, signer=identity.generate()), "wrong_authority"),
        (lambda n: credential(n, days=-1), "expired"),
    ],
)
def test_member_with_an_invalid_credential_is_never_added(
    bad_credential: Callable[[identity.Identity], bytes], reason: str
) -> None:
    async def main() -> None:
        net = Mvlan()
        async with trio.open_nursery() as nursery:
            good = [net.add(f"m{i}") for i in range(2)]
            for m in good:
                await net.start(nursery, m)
            await converged(good, 2)
            bad = net.add("bad", cred=bad_credential)
            await net.start(nursery, bad)
            await trio.sleep(5 * SETTINGS.member_timeout_s)
            assert not bad.keys.joined
            assert bad.pv.status()["mls_state"] == "credential_invalid"
            assert bad.pv.status()["credential_error"] == reason
            assert good[0].counters.drops[f"mvlan_rejected_{reason}"] > 0
            await converged(good, 2)
            nursery.cancel_scope.cancel()

    run_virtual(main)


def test_a_node_without_a_valid_credential_founds_no_group_until_it_gets_one() -> None:
    """Alone, a node with an expired credential would found a group of one and report
    itself a member; it waits instead, and founds once its credential file is renewed."""
    renewed: list[bytes] = []

    async def main() -> None:
        net = Mvlan()
        async with trio.open_nursery() as nursery:
            node = identity.generate()
            alone = net.add(
                "alone",
                node=node,
                cred=lambda n: credential(n, days=-1),
                reload=lambda: renewed[0] if renewed else None,
            )
            await net.start(nursery, alone)
            await trio.sleep(10 * SETTINGS.member_timeout_s)
            assert not alone.keys.joined
            assert alone.pv.status()["mls_state"] == "credential_invalid"
            assert alone.counters.events["mvlan_groups_founded"] == 0
            renewed.append(credential(node))
            await converged([alone], 1, timeout=10 * SETTINGS.member_timeout_s)
            assert alone.pv.status()["mls_state"] == "member"
            nursery.cancel_scope.cancel()

    run_virtual(main)


def test_removed_member_cannot_open_frames_of_the_next_epoch() -> None:
    async def main() -> None:
        net = Mvlan()
        async with trio.open_nursery() as nursery:
            members = await group_of(net, nursery, 3)
            gone = members[2]
            held = MlsKeyProvider(vlan_id=VLAN, grace_s=3600, clock=trio.current_time)
            old = gone.keys.current()
            held.install(epoch=old.epoch, frame_key=old.frame_key)
            net.stop(gone)
            await converged(members[:2], 2)
            assert members[0].keys.current().epoch > old.epoch

            sealer = FrameSealer(VLAN, members[0].keys)
            packet = sealer.seal(vft=bytes(16), plaintext=b"secret frame", hop_limit=4)
            header = wire.decode_data(packet)
            assert FrameOpener(members[1].keys).open(packet, header) == b"secret frame"
            with pytest.raises(OpenError, match="unknown_epoch"):
                FrameOpener(held).open(packet, header)
            # Even forcing the old key onto the new MLS-ID does not authenticate.
            forced = MlsKeyProvider(vlan_id=VLAN, grace_s=3600, clock=trio.current_time)
            forced.install(epoch=old.epoch, frame_key=old.frame_key)
            forged = wire.DataHeader(
                header.hop_limit, header.flags, VLAN, forced.current().mls_id, header.vft,
                header.sender, header.counter,
            ).encode()  # fmt: skip
            with pytest.raises(OpenError, match="auth"):
                relabelled = forged + packet[wire.DATA_HEADER_LEN :]
                FrameOpener(forced).open(relabelled, wire.decode_data(relabelled))
            nursery.cancel_scope.cancel()

    run_virtual(main)


def test_old_epoch_keys_are_erased_after_the_grace_window() -> None:
    async def main() -> None:
        net = Mvlan()
        async with trio.open_nursery() as nursery:
            a, b = net.add("a"), net.add("b")
            await net.start(nursery, a)
            await net.start(nursery, b)
            await converged([a, b], 2)
            before = a.keys.current().mls_id
            c = net.add("c")
            await net.start(nursery, c)
            await converged([a, b, c], 3)
            assert a.keys.lookup(before) is not None or a.keys.current().mls_id == before
            await trio.sleep(SETTINGS.epoch_grace_s + 0.5)
            assert a.keys.lookup(before) is None
            assert a.keys.held_mls_ids() == [a.keys.current().mls_id]
            nursery.cancel_scope.cancel()

    run_virtual(main)


def test_committer_rekeys_after_the_rekey_interval() -> None:
    async def main() -> None:
        net = Mvlan(PrivateSettings(rekey_interval_s=20.0, member_timeout_s=3.0, epoch_grace_s=1.0))
        async with trio.open_nursery() as nursery:
            members = await group_of(net, nursery, 2)
            epoch = members[0].keys.current().epoch
            await trio.sleep(25)
            await converged(members, 2)
            assert members[0].keys.current().epoch > epoch
            nursery.cancel_scope.cancel()

    run_virtual(main)


def test_partitions_heal_into_one_group() -> None:
    async def main() -> None:
        net = Mvlan()
        async with trio.open_nursery() as nursery:
            left = [net.add(f"l{i}") for i in range(2)]
            right = [net.add(f"r{i}") for i in range(3)]
            for m in right:
                m.partition = 1
            for m in left + right:
                await net.start(nursery, m)
            await converged(left, 2)
            await converged(right, 3)
            right_tag = right[0].pv.tag
            assert left[0].pv.tag != right_tag
            for m in right:
                m.partition = 0
            await converged(left + right, 5)
            # The larger side's group survives.
            assert {m.pv.tag for m in left + right} == {right_tag}
            nursery.cancel_scope.cancel()

    run_virtual(main)


def test_a_restarted_member_replaces_its_old_leaf() -> None:
    async def main() -> None:
        net = Mvlan()
        async with trio.open_nursery() as nursery:
            members = await group_of(net, nursery, 3)
            old = members[2]
            net.stop(old)
            again = net.add("m2-again", node=old.pv.node)
            await net.start(nursery, again)
            group = [*members[:2], again]
            await converged(group, 3)
            keys = [x.signature_key for x in members[0].pv.group.members()]  # type: ignore[union-attr]
            assert keys.count(old.pv.own_key) == 1
            nursery.cancel_scope.cancel()

    run_virtual(main)


def test_a_renewed_credential_is_taken_into_the_group() -> None:
    async def main() -> None:
        net = Mvlan()
        renewed: list[bytes] = []
        async with trio.open_nursery() as nursery:
            members = [net.add(f"m{i}") for i in range(2)]
            third = net.add("m2", reload=lambda: renewed[0] if renewed else None)
            for m in [*members, third]:
                await net.start(nursery, m)
            await converged([*members, third], 3)
            renewed.append(credential(third.pv.node, days=60))
            with trio.fail_after(120):
                while True:
                    await trio.sleep(0.5)
                    group = members[0].pv.group
                    creds = (
                        [] if group is None else [x.credential.identity for x in group.members()]
                    )
                    if renewed[0] in creds and len(views([*members, third])) == 1:
                        break
            await converged([*members, third], 3)
            nursery.cancel_scope.cancel()

    run_virtual(main)


def test_every_member_refreshes_its_leaf_key_at_the_rekey_interval() -> None:
    async def main() -> None:
        net = Mvlan(PrivateSettings(rekey_interval_s=10.0, member_timeout_s=3.0, epoch_grace_s=1.0))
        async with trio.open_nursery() as nursery:
            members = await group_of(net, nursery, 4)

            def leaf_keys() -> dict[bytes, bytes]:
                group = members[0].pv.group
                assert group is not None
                return {x.signature_key: x.encryption_key for x in group.members()}

            before = leaf_keys()
            await trio.sleep(25)
            await converged(members, 4)
            after = leaf_keys()
            assert after.keys() == before.keys()
            assert all(after[k] != before[k] for k in before)
            committers = [m for m in members if m.pv.status()["committer"]]
            assert len(committers) == 1
            for m in members:
                if m is not committers[0]:
                    assert m.counters.events["mvlan_self_updates"] >= 1
                    assert m.counters.events["mvlan_update_proposals"] >= 1
            nursery.cancel_scope.cancel()

    run_virtual(main)


def test_a_group_split_by_a_partition_heals_into_one_group() -> None:
    async def main() -> None:
        net = Mvlan()
        async with trio.open_nursery() as nursery:
            members = await group_of(net, nursery, 5)
            left, right = members[:2], members[2:]
            for m in right:
                m.partition = 1
            # Each side removes the other and carries on under its own epochs.
            await converged(left, 2)
            await converged(right, 3)
            assert views(left) != views(right)
            for m in right:
                m.partition = 0
            await converged(members, 5)
            assert len({m.pv.tag for m in members}) == 1
            nursery.cancel_scope.cancel()

    run_virtual(main)


def own_mac(member: Member) -> bytes:
    assert member.pv.mac_probe is not None
    return member.pv.mac_probe.claim.mac


def test_members_whose_macs_collide_end_with_distinct_macs() -> None:
    async def main() -> None:
        net = Mvlan()
        async with trio.open_nursery() as nursery:
            a_node, c_node = identity.generate(), identity.generate()
            taken = ids.member_mac(a_node.public_bytes, VLAN, bytes(16))
            own_c = ids.member_mac(c_node.public_bytes, VLAN, bytes(16))
            a = net.add("a", node=a_node, mac=taken)
            b = net.add("b", mac=taken)  # forced onto a's MAC
            c = net.add("c", node=c_node, mac=own_c)
            for m in (a, b, c):
                await net.start(nursery, m)
            await converged([a, b, c], 3)
            with trio.fail_after(60):
                while len({own_mac(m) for m in (a, b, c)}) < 3:
                    await trio.sleep(0.25)
            rerolled = [m for m in (a, b) if m.counters.events["mac_rerolled"]]
            assert rerolled
            assert own_mac(c) == own_c and not c.counters.events["mac_rerolled"]
            # Once distinct, probes go on and nobody re-rolls again.
            counts = [m.counters.events["mac_rerolled"] for m in (a, b, c)]
            await trio.sleep(5 * SETTINGS.hello_interval_s)
            assert [m.counters.events["mac_rerolled"] for m in (a, b, c)] == counts
            # Probes travel encrypted: no CONTROL body carries a MAC in the clear.
            macs = {taken, own_c, *(own_mac(m) for m in (a, b, c))}
            probes = [body for kind, body in net.sent if kind == MACPROBE]
            assert probes
            assert not any(mac in body for body in probes for mac in macs)
            nursery.cancel_scope.cancel()

    run_virtual(main)


def test_a_configured_mac_that_collides_is_reported_and_kept() -> None:
    async def main() -> None:
        net = Mvlan()
        async with trio.open_nursery() as nursery:
            mac = bytes.fromhex("020000000001")
            a = net.add("a", mac=mac, derived_mac=False)
            b = net.add("b", mac=mac, derived_mac=False)
            for m in (a, b):
                await net.start(nursery, m)
            await converged([a, b], 2)
            with trio.fail_after(60):
                while not all(m.counters.events["mac_collision_configured"] for m in (a, b)):
                    await trio.sleep(0.25)
            assert own_mac(a) == own_mac(b) == mac
            nursery.cancel_scope.cancel()

    run_virtual(main)
