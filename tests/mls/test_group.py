"""Group API behaviour: joins, proposals, commits, application data, persistence."""

from __future__ import annotations

import pytest

from peertap.sidecar.mls.errors import DecodeError, UnsupportedError, ValidationError
from peertap.sidecar.mls.group import (
    Group,
    GroupInactiveError,
    GroupOptions,
    KeyPackageBundle,
    make_key_package,
)
from peertap.sidecar.mls.structs import (
    ContentType,
    Extension,
    MLSMessage,
    PrivateMessage,
    PublicMessage,
    RequiredCapabilities,
    WireFormat,
)
from peertap.sidecar.mls.suites import SUITE_IDS, get_suite


def _signer(suite_id: int = 1) -> bytes:
    return get_suite(suite_id).generate_signature_key_pair()[0]


def _bundle(name: bytes, suite_id: int = 1) -> KeyPackageBundle:
    return make_key_package(suite_id, identity=name, signature_private=_signer(suite_id))


def _group_of(n: int, suite_id: int = 1, options: GroupOptions | None = None) -> list[Group]:
    creator = Group.create(
        suite_id, identity=b"m0", signature_private=_signer(suite_id), options=options
    )
    bundles = [_bundle(b"m%d" % i, suite_id) for i in range(1, n)]
    if not bundles:
        return [creator]
    result = creator.commit(add=[b.key_package for b in bundles])
    assert result.welcome is not None
    joined = [Group.join_from_welcome(result.welcome, b, options=options) for b in bundles]
    return [creator, *joined]


def _deliver(message: MLSMessage, groups: list[Group]) -> None:
    for g in groups:
        g.process(message.encode())


def _assert_agree(groups: list[Group]) -> None:
    auth = {g.epoch_authenticator for g in groups}
    assert len(auth) == 1
    assert len({g.export_secret("label", b"ctx", 16) for g in groups}) == 1


@pytest.mark.parametrize("suite_id", SUITE_IDS)
def test_every_cipher_suite_adds_commits_and_exchanges_data(suite_id: int) -> None:
    a, b, c = _group_of(3, suite_id)
    _assert_agree([a, b, c])
    commit = b.commit().commit_message
    _deliver(commit, [a, c])
    _assert_agree([a, b, c])
    assert a.epoch == 2
    message = c.protect(b"frame")
    assert isinstance(message.body, PrivateMessage)
    for g in (a, b):
        processed = g.process(message.encode())
        assert processed.content_type == ContentType.APPLICATION
        assert processed.application_data == b"frame"
        assert processed.sender.index == c.own_leaf_index


def test_welcome_without_ratchet_tree_needs_the_tree_out_of_band() -> None:
    options = GroupOptions(ratchet_tree_in_group_info=False)
    a = Group.create(1, identity=b"a", signature_private=_signer(), options=options)
    bob = _bundle(b"b")
    result = a.commit(add=[bob.key_package])
    assert result.welcome is not None
    with pytest.raises(ValidationError):
        Group.join_from_welcome(result.welcome, bob)
    b = Group.join_from_welcome(result.welcome, bob, a.ratchet_tree.encode())
    _assert_agree([a, b])


def test_welcome_for_someone_else_is_rejected() -> None:
    a = Group.create(1, identity=b"a", signature_private=_signer())
    result = a.commit(add=[_bundle(b"b").key_package])
    assert result.welcome is not None
    with pytest.raises(ValidationError):
        Group.join_from_welcome(result.welcome, _bundle(b"stranger"))


def test_proposals_by_reference_from_several_members() -> None:
    a, b, c, d = _group_of(4)
    e = _bundle(b"e")
    proposals = [
        b.propose_add(e.key_package),
        c.propose_update(),
        d.propose_remove(a.own_leaf_index),
    ]
    senders = [b, c, d]
    everyone = [a, b, c, d]
    for sender, proposal in zip(senders, proposals, strict=True):
        _deliver(proposal, [g for g in everyone if g is not sender])
    result = b.commit()
    assert result.welcome is not None
    removed = a.process(result.commit_message)
    assert removed.removed and not a.active
    _deliver(result.commit_message, [c, d])
    joined = Group.join_from_welcome(result.welcome, e)
    _assert_agree([b, c, d, joined])
    assert joined.own_leaf_index == 0  # the Add fills the leaf the Remove blanked
    assert sorted(m.index for m in b.members()) == [0, 1, 2, 3]


def test_update_proposal_committed_by_other_gives_proposer_its_new_key() -> None:
    a, b, c = _group_of(3)
    old_key = {m.index: m.encryption_key for m in a.members()}[c.own_leaf_index]
    proposal = c.propose_update()
    _deliver(proposal, [a, b])
    commit = a.commit().commit_message
    _deliver(commit, [b, c])
    _assert_agree([a, b, c])
    new_key = {m.index: m.encryption_key for m in a.members()}[c.own_leaf_index]
    assert new_key != old_key
    # c can still decrypt later path secrets encrypted to its new leaf key
    _deliver(b.commit().commit_message, [a, c])
    _assert_agree([a, b, c])


def test_commit_without_path_for_adds_only() -> None:
    a, b = _group_of(2)
    carol = _bundle(b"c")
    result = a.commit(add=[carol.key_package], path=False)
    assert result.welcome is not None
    _deliver(result.commit_message, [b])
    c = Group.join_from_welcome(result.welcome, carol)
    _assert_agree([a, b, c])
    with pytest.raises(ValidationError):
        a.commit(remove=[b.own_leaf_index], path=False)


def test_handshake_as_private_messages() -> None:
    options = GroupOptions(handshake_wire_format=WireFormat.PRIVATE_MESSAGE)
    a, b, c = _group_of(3, options=options)
    proposal = b.propose_update()
    assert isinstance(proposal.body, PrivateMessage)
    _deliver(proposal, [a, c])
    commit = c.commit().commit_message
    assert isinstance(commit.body, PrivateMessage)
    _deliver(commit, [a, b])
    _assert_agree([a, b, c])


def test_external_psk_and_group_context_extensions() -> None:
    a, b = _group_of(2)
    for g in (a, b):
        g.add_external_psk(b"shared", b"\x07" * 32)
    psk = a.propose_psk(b"shared")
    _deliver(psk, [b])
    required = RequiredCapabilities((), (), (1,))
    gce = b.propose_group_context_extensions([Extension(3, required.encode())])
    _deliver(gce, [a])
    commit = a.commit().commit_message
    _deliver(commit, [b])
    _assert_agree([a, b])
    assert a.group_context.extensions[0].extension_type == 3


def test_missing_psk_rejects_the_commit_and_keeps_state() -> None:
    a, b = _group_of(2)
    a.add_external_psk(b"only-a", b"\x01" * 32)
    proposal = a.propose_psk(b"only-a")
    b.process(proposal)
    commit = a.commit().commit_message
    before = b.save()
    with pytest.raises(ValidationError):
        b.process(commit)
    assert b.save() == before


def test_external_join_and_resync() -> None:
    a, b = _group_of(2)
    d, commit = Group.join_external(a.group_info(), identity=b"d", signature_private=_signer())
    _deliver(commit, [a, b])
    _assert_agree([a, b, d])
    assert len(a.members()) == 3
    # d rejoins, removing its old appearance
    d2, commit = Group.join_external(
        b.group_info(),
        identity=b"d",
        signature_private=_signer(),
        remove_prior=d.own_leaf_index,
    )
    result = d.process(commit)
    assert result.removed
    _deliver(commit, [a, b])
    _assert_agree([a, b, d2])
    assert len(a.members()) == 3


def test_reinit_is_recorded_and_stops_sending() -> None:
    a, b = _group_of(2)
    proposal = a.propose_reinit(group_id=b"next", cipher_suite=3)
    _deliver(proposal, [b])
    commit = b.commit().commit_message
    processed = a.process(commit)
    assert processed.reinit is not None and processed.reinit.cipher_suite == 3
    assert a.pending_reinit == b.pending_reinit
    for g in (a, b):
        with pytest.raises(GroupInactiveError):
            g.protect(b"data")


def test_pending_commit_merges_when_echoed_or_is_discarded() -> None:
    a, b = _group_of(2)
    result = a.commit(merge=False)
    assert a.has_pending_commit and a.epoch == 1
    a.process(result.commit_message)
    b.process(result.commit_message)
    assert a.epoch == 2
    _assert_agree([a, b])
    a.commit(merge=False)
    a.discard_pending_commit()
    assert a.epoch == 2
    commit = b.commit().commit_message
    a.process(commit)
    _assert_agree([a, b])


def test_own_message_cannot_be_processed() -> None:
    a, _ = _group_of(2)
    with pytest.raises(ValidationError):
        a.process(a.propose_update())


def test_save_and_restore_round_trip() -> None:
    a, b, c = _group_of(3)
    _deliver(b.protect(b"one"), [a])
    restored = Group.restore(a.save())
    assert restored.epoch_authenticator == a.epoch_authenticator
    assert restored.save() == a.save()
    # the restored member keeps following the group and its replay protection
    later = b.protect(b"two")
    assert restored.process(later).application_data == b"two"
    commit = c.commit().commit_message
    _deliver(commit, [restored, b])
    _assert_agree([restored, b, c])


def test_restore_rejects_unknown_versions_and_garbage() -> None:
    (a,) = _group_of(1)
    saved = a.save()
    with pytest.raises(UnsupportedError):
        Group.restore(saved[:5] + b"\x00\x63" + saved[7:])
    with pytest.raises(DecodeError):
        Group.restore(b"not a state")
    with pytest.raises(DecodeError):
        Group.restore(saved[:-3])


def test_members_and_group_info() -> None:
    a, _ = _group_of(2)
    assert [m.credential.identity for m in a.members()] == [b"m0", b"m1"]
    info = a.group_info()
    assert info.wire_format == WireFormat.GROUP_INFO
    assert isinstance(a.propose_update().body, PublicMessage)
