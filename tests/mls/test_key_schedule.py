"""Key schedule, PSKs and transcript hashes: behaviour beyond the vectors."""

from __future__ import annotations

import pytest

from peertap.sidecar.mls import key_schedule as ks
from peertap.sidecar.mls import transcript
from peertap.sidecar.mls.errors import DecodeError, DecryptError, SignatureError, ValidationError
from peertap.sidecar.mls.psk import PreSharedKeyID, PSKType, ResumptionPSKUsage, psk_secret
from peertap.sidecar.mls.structs import (
    AuthenticatedContent,
    Commit,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    Proposal,
    ProtocolVersion,
    Remove,
    Sender,
    WireFormat,
)
from peertap.sidecar.mls.suites import SUITE_IDS, CipherSuite, get_suite


@pytest.fixture(params=SUITE_IDS, ids=lambda i: f"suite{i}")
def suite(request: pytest.FixtureRequest) -> CipherSuite:
    return get_suite(request.param)


def _context(suite: CipherSuite, epoch: int = 1) -> GroupContext:
    return GroupContext(ProtocolVersion.MLS10, suite.id, b"group", epoch, b"tree", b"transcript")


def test_welcome_path_and_commit_path_reach_the_same_epoch(suite: CipherSuite) -> None:
    context = _context(suite)
    init, commit, psk = b"i" * suite.nh, b"c" * suite.nh, b"p" * suite.nh
    member = ks.derive_epoch(
        suite, init_secret=init, commit_secret=commit, psk_secret=psk, group_context=context
    )
    joiner = ks.derive_epoch_from_joiner(
        suite, joiner_secret=member.joiner_secret, psk_secret=psk, group_context=context
    )
    assert joiner == member
    assert ks.welcome_secret(suite, member.joiner_secret, psk) == member.welcome_secret


def test_missing_commit_and_psk_secrets_are_all_zero(suite: CipherSuite) -> None:
    context, init, zero = _context(suite), b"i" * suite.nh, bytes(suite.nh)
    implicit = ks.derive_epoch(
        suite, init_secret=init, commit_secret=None, psk_secret=None, group_context=context
    )
    explicit = ks.derive_epoch(
        suite, init_secret=init, commit_secret=zero, psk_secret=zero, group_context=context
    )
    assert implicit == explicit


def test_every_epoch_secret_depends_on_the_group_context(suite: CipherSuite) -> None:
    init = b"i" * suite.nh
    one, two = (
        ks.derive_epoch(
            suite, init_secret=init, commit_secret=None, psk_secret=None, group_context=context
        )
        for context in (_context(suite, 1), _context(suite, 2))
    )
    for name in ks.EpochSecrets.__slots__:
        assert getattr(one, name) != getattr(two, name), name


def test_welcome_key_and_nonce_have_aead_lengths(suite: CipherSuite) -> None:
    key, nonce = ks.welcome_key_nonce(suite, b"w" * suite.nh)
    assert (len(key), len(nonce)) == (suite.nk, suite.nn)


def test_exporter_separates_labels_contexts_and_lengths(suite: CipherSuite) -> None:
    secret = b"e" * suite.nh
    base = ks.mls_exporter(suite, secret, "peertap frame key", b"vlan", 32)
    assert len(base) == 32
    assert ks.mls_exporter(suite, secret, "peertap frame key", b"vlan", 32) == base
    assert ks.mls_exporter(suite, secret, "peertap other", b"vlan", 32) != base
    assert ks.mls_exporter(suite, secret, "peertap frame key", b"vlan2", 32) != base
    assert ks.mls_exporter(suite, secret, "peertap frame key", b"vlan", 16) != base[:16]


def test_external_init_gives_joiner_and_group_the_same_init_secret(suite: CipherSuite) -> None:
    external_priv, external_pub = ks.external_key_pair(suite, b"x" * suite.nh)
    kem_output, init_secret = ks.external_init_send(suite, external_pub)
    assert len(init_secret) == suite.nh
    assert ks.external_init_receive(suite, external_priv, kem_output) == init_secret
    other_priv = ks.external_key_pair(suite, b"y" * suite.nh)[0]
    assert ks.external_init_receive(suite, other_priv, kem_output) != init_secret


def test_malformed_external_init_kem_output_raises_decrypt_error(suite: CipherSuite) -> None:
    external_priv = ks.external_key_pair(suite, b"x" * suite.nh)[0]
    with pytest.raises(DecryptError):
        ks.external_init_receive(suite, external_priv, b"\x01\x02")


def test_psk_secret_is_zero_without_psks_and_depends_on_order(suite: CipherSuite) -> None:
    assert psk_secret(suite, []) == bytes(suite.nh)
    a = (PreSharedKeyID.external(b"a", b"n" * suite.nh), b"psk a")
    b = (PreSharedKeyID.external(b"b", b"n" * suite.nh), b"psk b")
    assert psk_secret(suite, [a, b]) != psk_secret(suite, [b, a])
    assert psk_secret(suite, [a]) != psk_secret(suite, [a, b])


def test_pre_shared_key_ids_round_trip() -> None:
    external = PreSharedKeyID.external(b"id", b"nonce")
    resumption = PreSharedKeyID.resumption(ResumptionPSKUsage.BRANCH, b"group", 7, b"nonce")
    for psk_id in (external, resumption):
        assert PreSharedKeyID.decode(psk_id.encode()) == psk_id
    assert resumption.psktype == PSKType.RESUMPTION


def test_unknown_psk_type_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        PreSharedKeyID.decode(b"\x03\x00\x00")


def _commit_content(tag: bytes | None) -> AuthenticatedContent:
    framed = FramedContent(b"group", 3, Sender.member(0), b"", Commit())
    return AuthenticatedContent(WireFormat.PUBLIC_MESSAGE, framed, FramedContentAuthData(b"s", tag))


def test_transcript_hashes_chain_through_the_confirmation_tag(suite: CipherSuite) -> None:
    key = b"k" * suite.nh
    content = _commit_content(b"placeholder")
    confirmed = transcript.confirmed_transcript_hash(suite, b"", content)
    tag = transcript.confirmation_tag(suite, key, confirmed)
    transcript.verify_confirmation_tag(suite, confirmation_key=key, confirmed=confirmed, tag=tag)
    confirmed_after, interim = transcript.update_transcript_hashes(suite, b"", _commit_content(tag))
    assert confirmed_after == confirmed  # the tag is not part of the confirmed hash
    assert interim == transcript.interim_transcript_hash(suite, confirmed, tag)
    assert transcript.update_transcript_hashes(suite, interim, content)[0] != confirmed


def test_tampered_confirmation_tag_raises_signature_error(suite: CipherSuite) -> None:
    key = b"k" * suite.nh
    tag = transcript.confirmation_tag(suite, key, b"confirmed")
    with pytest.raises(SignatureError):
        transcript.verify_confirmation_tag(
            suite, confirmation_key=key, confirmed=b"confirmed", tag=tag[:-1] + bytes([tag[-1] ^ 1])
        )
    with pytest.raises(SignatureError):
        transcript.verify_confirmation_tag(
            suite, confirmation_key=key, confirmed=b"confirmed", tag=None
        )


def test_transcript_hashes_cover_commits_only(suite: CipherSuite) -> None:
    proposal = Proposal(Remove(1))
    framed = FramedContent(b"group", 3, Sender.member(0), b"", proposal)
    content = AuthenticatedContent(WireFormat.PUBLIC_MESSAGE, framed, FramedContentAuthData(b"s"))
    with pytest.raises(ValidationError):
        transcript.confirmed_transcript_hash(suite, b"", content)
    with pytest.raises(ValidationError):
        transcript.update_transcript_hashes(suite, b"", _commit_content(None))
