"""Rejected messages raise typed errors and leave the group state exactly as it was."""

from __future__ import annotations

from dataclasses import replace

import pytest

from peertap.sidecar.mls.errors import (
    DecodeError,
    DecryptError,
    EpochError,
    MLSError,
    ReplayError,
    SignatureError,
    ValidationError,
)
from peertap.sidecar.mls.framing import (
    membership_tag,
    public_message,
    sign_content,
    with_confirmation_tag,
)
from peertap.sidecar.mls.group import Group, make_key_package
from peertap.sidecar.mls.structs import (
    Commit,
    Lifetime,
    MLSMessage,
    PrivateMessage,
    ProposalOrRef,
    PublicMessage,
    WireFormat,
)
from peertap.sidecar.mls.suites import get_suite

suite = get_suite(1)


def _signer() -> bytes:
    return suite.generate_signature_key_pair()[0]


def _pair() -> tuple[Group, Group, Group]:
    a = Group.create(1, identity=b"a", signature_private=_signer())
    bundles = [make_key_package(1, identity=n, signature_private=_signer()) for n in (b"b", b"c")]
    result = a.commit(add=[x.key_package for x in bundles])
    assert result.welcome is not None
    b, c = (Group.join_from_welcome(result.welcome, x) for x in bundles)
    return a, b, c


def _rejects(group: Group, message: bytes | MLSMessage, error: type[MLSError]) -> MLSError:
    before = group.save()
    with pytest.raises(error) as caught:
        group.process(message)
    assert group.save() == before
    return caught.value


def _public(message: MLSMessage) -> PublicMessage:
    assert isinstance(message.body, PublicMessage)
    return message.body


def _resigned_commit(sender: Group, message: MLSMessage, commit: Commit) -> MLSMessage:
    """The same commit content, altered, with a valid signature and membership tag."""
    body = _public(message)
    state = sender._state
    framed = replace(body.content, content=commit)
    auth = sign_content(
        suite,
        framed,
        sig_priv=state.signature_private,
        wire_format=WireFormat.PUBLIC_MESSAGE,
        group_context=state.context,
    )
    assert body.auth.confirmation_tag is not None
    auth = with_confirmation_tag(auth, body.auth.confirmation_tag)
    return MLSMessage(
        public_message(
            suite, auth, membership_key=state.secrets.membership_key, group_context=state.context
        )
    )


def test_tampered_signature_is_rejected() -> None:
    a, b, _ = _pair()
    body = _public(b.commit(merge=False).commit_message)
    signature = bytearray(body.auth.signature)
    signature[0] ^= 1
    auth = replace(body.auth, signature=bytes(signature))
    # the membership tag covers the signature, so re-tag as the sender would have
    state = b._state
    tag = membership_tag(
        suite,
        membership_key=state.secrets.membership_key,
        content=body.content,
        auth=auth,
        group_context=state.context,
    )
    bad = MLSMessage(replace(body, auth=auth, membership_tag=tag))
    _rejects(a, bad, SignatureError)


def test_tampered_membership_tag_is_rejected() -> None:
    a, b, _ = _pair()
    body = _public(b.propose_update())
    assert body.membership_tag is not None
    bad = replace(body, membership_tag=bytes(len(body.membership_tag)))
    _rejects(a, MLSMessage(bad), SignatureError)


def test_tampered_confirmation_tag_is_rejected() -> None:
    a, b, _ = _pair()
    message = b.commit(merge=False).commit_message
    body = _public(message)
    state = b._state
    framed = body.content
    auth = sign_content(
        suite,
        framed,
        sig_priv=state.signature_private,
        wire_format=WireFormat.PUBLIC_MESSAGE,
        group_context=state.context,
    )
    auth = with_confirmation_tag(auth, bytes(suite.nh))
    bad = public_message(
        suite, auth, membership_key=state.secrets.membership_key, group_context=state.context
    )
    _rejects(a, MLSMessage(bad), SignatureError)


def test_wrong_parent_hash_in_update_path_is_rejected() -> None:
    a, b, _ = _pair()
    message = b.commit(merge=False).commit_message
    commit = _public(message).content.content
    assert isinstance(commit, Commit) and commit.path is not None
    state = b._state
    leaf = replace(commit.path.leaf_node, parent_hash=bytes(suite.nh)).signed(
        suite, state.signature_private, state.context.group_id, b.own_leaf_index
    )
    bad = replace(commit, path=replace(commit.path, leaf_node=leaf))
    error = _rejects(a, _resigned_commit(b, message, bad), ValidationError)
    assert "parent_hash" in str(error)


def test_commit_referencing_an_unknown_proposal_is_rejected() -> None:
    a, b, _ = _pair()
    message = b.commit(merge=False).commit_message
    commit = _public(message).content.content
    assert isinstance(commit, Commit)
    bad = replace(commit, proposals=(ProposalOrRef(reference=bytes(32)),))
    _rejects(a, _resigned_commit(b, message, bad), ValidationError)


def test_messages_of_another_epoch_are_rejected() -> None:
    a, b, c = _pair()
    stale_app = b.protect(b"old epoch")
    stale_proposal = b.propose_update()
    commit = c.commit().commit_message
    a.process(commit)
    b.process(commit)
    _rejects(a, stale_app, EpochError)
    _rejects(a, stale_proposal, EpochError)
    # a message from the future
    future = c.commit().commit_message
    a_behind = Group.restore(a.save())
    b.process(future)
    _rejects(a_behind, b.protect(b"future"), EpochError)


def test_replayed_generation_is_rejected() -> None:
    a, b, _ = _pair()
    message = b.protect(b"once").encode()
    assert a.process(message).application_data == b"once"
    _rejects(a, message, ReplayError)
    assert a.process(b.protect(b"twice")).application_data == b"twice"


def test_truncated_encodings_are_rejected() -> None:
    a, b, _ = _pair()
    for message in (b.protect(b"data").encode(), b.commit(merge=False).commit_message.encode()):
        for cut in (1, 7, len(message) // 2, len(message) - 1):
            _rejects(a, message[:cut], DecodeError)
        _rejects(a, message + b"\x00", DecodeError)


def test_tampered_ciphertext_is_rejected() -> None:
    a, b, _ = _pair()
    message = b.protect(b"data")
    body = message.body
    assert isinstance(body, PrivateMessage)
    ct = bytearray(body.ciphertext)
    ct[-1] ^= 1
    before = a.epoch_authenticator
    with pytest.raises(DecryptError):
        a.process(MLSMessage(replace(body, ciphertext=bytes(ct))))
    assert a.epoch_authenticator == before
    # the untampered message still decrypts: the failed attempt consumed nothing
    assert a.process(message).application_data == b"data"


def test_removed_member_cannot_process_later_messages() -> None:
    a, b, c = _pair()
    commit = a.commit(remove=[c.own_leaf_index]).commit_message
    b.process(commit)
    assert c.process(commit).removed
    with pytest.raises(MLSError):
        c.process(a.protect(b"after"))
    with pytest.raises(MLSError):
        c.process(b.commit().commit_message)
    with pytest.raises(MLSError):
        c.protect(b"still here?")


def test_tampered_welcome_is_rejected() -> None:
    a = Group.create(1, identity=b"a", signature_private=_signer())
    bob = make_key_package(1, identity=b"b", signature_private=_signer())
    result = a.commit(add=[bob.key_package])
    assert result.welcome is not None
    data = result.welcome.encode()
    with pytest.raises(DecodeError):
        Group.join_from_welcome(data[:-1], bob)
    flipped = bytearray(data)
    flipped[-1] ^= 1
    with pytest.raises(DecryptError):
        Group.join_from_welcome(bytes(flipped), bob)


def test_expired_or_mismatched_key_packages_are_not_added() -> None:
    a = Group.create(1, identity=b"a", signature_private=_signer())
    expired = make_key_package(
        1, identity=b"old", signature_private=_signer(), lifetime=Lifetime(0, 10)
    )
    with pytest.raises(ValidationError, match="lifetime"):
        a.commit(add=[expired.key_package])
    other_suite = make_key_package(3, identity=b"x", signature_private=_signer())
    with pytest.raises(ValidationError, match="cipher suite"):
        a.commit(add=[other_suite.key_package])
    assert a.epoch == 0
