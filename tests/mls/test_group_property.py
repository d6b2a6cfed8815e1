"""Random add / remove / update sequences among simulated clients keep every member in
agreement, and removed members are locked out of later epochs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peertap.sidecar.mls.errors import MLSError
from peertap.sidecar.mls.group import Group, GroupOptions, make_key_package
from peertap.sidecar.mls.structs import MLSMessage, WireFormat
from peertap.sidecar.mls.suites import get_suite

SUITE = 1
suite = get_suite(SUITE)

ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "update", "empty", "propose_remove", "message"]),
        st.integers(min_value=0, max_value=1 << 16),
        st.integers(min_value=0, max_value=1 << 16),
    ),
    min_size=1,
    max_size=10,
)


class Sim:
    def __init__(self, private_handshake: bool) -> None:
        self.options = GroupOptions(
            handshake_wire_format=(
                WireFormat.PRIVATE_MESSAGE if private_handshake else WireFormat.PUBLIC_MESSAGE
            )
        )
        self.counter = 0
        creator = Group.create(
            SUITE,
            identity=b"c0",
            signature_private=suite.generate_signature_key_pair()[0],
            options=self.options,
        )
        self.members: dict[int, Group] = {0: creator}
        self.removed: list[tuple[Group, MLSMessage]] = []

    def pick(self, n: int, exclude: int | None = None) -> int | None:
        choices = sorted(i for i in self.members if i != exclude)
        return choices[n % len(choices)] if choices else None

    def broadcast(self, sender: int, message: MLSMessage) -> None:
        data = message.encode()
        for index, group in list(self.members.items()):
            if index == sender:
                continue
            result = group.process(data)
            if result.removed:
                del self.members[index]
                self.removed.append((group, message))

    def add(self, committer: int, count: int) -> None:
        bundles = []
        for _ in range(count):
            self.counter += 1
            bundles.append(
                make_key_package(
                    SUITE,
                    identity=b"c%d" % self.counter,
                    signature_private=suite.generate_signature_key_pair()[0],
                )
            )
        result = self.members[committer].commit(add=[b.key_package for b in bundles])
        self.broadcast(committer, result.commit_message)
        assert result.welcome is not None
        for bundle in bundles:
            joined = Group.join_from_welcome(result.welcome.encode(), bundle, options=self.options)
            self.members[joined.own_leaf_index] = joined

    def check_agreement(self) -> None:
        groups = list(self.members.values())
        first = groups[0]
        for g in groups:
            assert g.epoch == first.epoch
            assert g.epoch_authenticator == first.epoch_authenticator
            assert g.export_secret("test", b"ctx", 32) == first.export_secret("test", b"ctx", 32)
            assert sorted(m.index for m in g.members()) == sorted(self.members)
        for removed, _ in self.removed:
            assert not removed.active


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops, st.booleans())
def test_random_operations_keep_members_in_agreement(
    steps: list[tuple[str, int, int]], private_handshake: bool
) -> None:
    sim = Sim(private_handshake)
    sim.add(0, 2)
    sim.check_agreement()
    for op, a, b in steps:
        actor = sim.pick(a)
        assert actor is not None
        group = sim.members[actor]
        if op == "add":
            sim.add(actor, 1 + b % 2)
        elif op == "remove":
            target = sim.pick(b, exclude=actor)
            if target is None:
                continue
            sim.broadcast(actor, group.commit(remove=[target]).commit_message)
        elif op == "propose_remove":
            target = sim.pick(b, exclude=actor)
            committer = sim.pick(b // 7, exclude=target)
            if target is None or committer is None:
                continue
            sim.broadcast(actor, group.propose_remove(target))
            sim.broadcast(committer, sim.members[committer].commit().commit_message)
        elif op == "update":
            committer = sim.pick(b, exclude=actor)
            if committer is None:
                continue
            sim.broadcast(actor, group.propose_update())
            sim.broadcast(committer, sim.members[committer].commit().commit_message)
        elif op == "empty":
            sim.broadcast(actor, group.commit().commit_message)
        else:
            sim.broadcast(actor, group.protect(b"frame %d" % b))
        sim.check_agreement()

    # removed members cannot follow the group any more
    if sim.removed:
        sender = sim.pick(0)
        assert sender is not None
        later = sim.members[sender].protect(b"after removal")
        commit = sim.members[sender].commit().commit_message
        for removed, _ in sim.removed:
            with pytest.raises(MLSError):
                removed.process(later)
            with pytest.raises(MLSError):
                removed.process(commit)
