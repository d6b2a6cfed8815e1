"""Framing: signatures, membership tags, PrivateMessage encryption, and their failures."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from peertap.sidecar.mls import framing
from peertap.sidecar.mls.codec import Writer
from peertap.sidecar.mls.errors import (
    DecodeError,
    DecryptError,
    EpochError,
    ReplayError,
    SignatureError,
    ValidationError,
)
from peertap.sidecar.mls.secret_tree import RatchetType, SecretTree, sender_data_key_nonce
from peertap.sidecar.mls.structs import (
    AuthenticatedContent,
    Commit,
    Content,
    ContentType,
    FramedContent,
    GroupContext,
    MLSMessage,
    PrivateMessage,
    Proposal,
    ProtocolVersion,
    PublicMessage,
    Remove,
    Sender,
    SenderData,
    SenderType,
    WireFormat,
)
from peertap.sidecar.mls.suites import SUITE_IDS, CipherSuite, get_suite

SENDER_LEAF = 1


@dataclass(frozen=True)
class Group:
    """The keys two members of one epoch share, plus the sender's signature key pair."""

    suite: CipherSuite
    context: GroupContext
    sig_priv: bytes
    sig_pub: bytes

    @property
    def membership_key(self) -> bytes:
        return b"m" * self.suite.nh

    @property
    def sender_data_secret(self) -> bytes:
        return b"s" * self.suite.nh

    def tree(self) -> SecretTree:
        return SecretTree(self.suite, b"e" * self.suite.nh, 4)

    def sign(
        self, content: Content, wire_format: int, sender: Sender | None = None
    ) -> AuthenticatedContent:
        framed = FramedContent(
            self.context.group_id,
            self.context.epoch,
            sender or Sender.member(SENDER_LEAF),
            b"aad",
            content,
        )
        signed = framing.sign_content(
            self.suite,
            framed,
            sig_priv=self.sig_priv,
            wire_format=wire_format,
            group_context=self.context,
        )
        if isinstance(content, Commit):
            signed = framing.with_confirmation_tag(signed, b"t" * self.suite.nh)
        return signed

    def public(self, content: Content) -> PublicMessage:
        return framing.public_message(
            self.suite,
            self.sign(content, WireFormat.PUBLIC_MESSAGE),
            membership_key=self.membership_key,
            group_context=self.context,
        )

    def read_public(self, message: PublicMessage) -> AuthenticatedContent:
        content = framing.public_message_content(
            self.suite, message, membership_key=self.membership_key, group_context=self.context
        )
        framing.verify_content_signature(
            self.suite, content, sig_pub=self.sig_pub, group_context=self.context
        )
        return content

    def private(self, content: Content, tree: SecretTree, padding: int = 0) -> PrivateMessage:
        return framing.private_message(
            self.suite,
            self.sign(content, WireFormat.PRIVATE_MESSAGE),
            secret_tree=tree,
            sender_data_secret=self.sender_data_secret,
            padding=padding,
        )

    def read_private(self, message: PrivateMessage, tree: SecretTree) -> AuthenticatedContent:
        content = framing.private_message_content(
            self.suite, message, secret_tree=tree, sender_data_secret=self.sender_data_secret
        )
        framing.verify_content_signature(
            self.suite, content, sig_pub=self.sig_pub, group_context=self.context
        )
        return content


@pytest.fixture(params=SUITE_IDS, ids=lambda i: f"suite{i}")
def group(request: pytest.FixtureRequest) -> Group:
    suite = get_suite(request.param)
    context = GroupContext(ProtocolVersion.MLS10, suite.id, b"group", 5, b"tree", b"transcript")
    return Group(suite, context, *suite.generate_signature_key_pair())


PROPOSAL = Proposal(Remove(2))


def _flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


@pytest.mark.parametrize("content", [PROPOSAL, Commit()], ids=["proposal", "commit"])
def test_public_message_round_trips_through_the_wire(group: Group, content: Content) -> None:
    wire = MLSMessage(group.public(content)).encode()
    message = MLSMessage.decode(wire).body
    assert isinstance(message, PublicMessage)
    received = group.read_public(message)
    assert received.content.content == content
    assert received.content.sender == Sender.member(SENDER_LEAF)


@pytest.mark.parametrize(
    "content", [b"frame", PROPOSAL, Commit()], ids=["application", "proposal", "commit"]
)
def test_private_message_round_trips_through_the_wire(group: Group, content: Content) -> None:
    wire = MLSMessage(group.private(content, group.tree(), padding=7)).encode()
    message = MLSMessage.decode(wire).body
    assert isinstance(message, PrivateMessage)
    received = group.read_private(message, group.tree())
    assert received.content.content == content
    assert received.content.authenticated_data == b"aad"
    assert received.content.sender == Sender.member(SENDER_LEAF)


def test_tampered_public_signature_raises_signature_error(group: Group) -> None:
    message = group.public(PROPOSAL)
    forged = replace(
        message, auth=replace(message.auth, signature=_flip_last(message.auth.signature))
    )
    with pytest.raises(SignatureError):
        group.read_public(forged)  # the membership tag covers the signature too
    content = framing.public_message_content(
        group.suite, message, membership_key=group.membership_key, group_context=group.context
    )
    bad = replace(content, auth=replace(content.auth, signature=_flip_last(content.auth.signature)))
    with pytest.raises(SignatureError):
        framing.verify_content_signature(
            group.suite, bad, sig_pub=group.sig_pub, group_context=group.context
        )


def test_signature_from_another_key_raises_signature_error(group: Group) -> None:
    other_pub = group.suite.generate_signature_key_pair()[1]
    content = group.sign(PROPOSAL, WireFormat.PUBLIC_MESSAGE)
    with pytest.raises(SignatureError):
        framing.verify_content_signature(
            group.suite, content, sig_pub=other_pub, group_context=group.context
        )


def test_signature_binds_the_group_context(group: Group) -> None:
    content = group.sign(PROPOSAL, WireFormat.PUBLIC_MESSAGE)
    other = replace(group.context, tree_hash=b"other tree")
    with pytest.raises(SignatureError):
        framing.verify_content_signature(
            group.suite, content, sig_pub=group.sig_pub, group_context=other
        )


def test_wrong_membership_key_raises_signature_error(group: Group) -> None:
    with pytest.raises(SignatureError):
        framing.public_message_content(
            group.suite,
            group.public(PROPOSAL),
            membership_key=b"x" * group.suite.nh,
            group_context=group.context,
        )


def test_public_message_from_another_epoch_raises_epoch_error(group: Group) -> None:
    later = replace(group.context, epoch=group.context.epoch + 1)
    with pytest.raises(EpochError):
        framing.public_message_content(
            group.suite,
            group.public(PROPOSAL),
            membership_key=group.membership_key,
            group_context=later,
        )


def test_external_sender_needs_no_membership_tag(group: Group) -> None:
    signed = group.sign(PROPOSAL, WireFormat.PUBLIC_MESSAGE, Sender(SenderType.EXTERNAL, 0))
    message = framing.public_message(
        group.suite, signed, membership_key=None, group_context=group.context
    )
    assert message.membership_tag is None
    decoded = PublicMessage.decode(message.encode())
    content = framing.public_message_content(
        group.suite, decoded, membership_key=None, group_context=group.context
    )
    framing.verify_content_signature(
        group.suite, content, sig_pub=group.sig_pub, group_context=None
    )


def test_application_data_cannot_be_a_public_message(group: Group) -> None:
    with pytest.raises(ValidationError):
        group.sign(b"frame", WireFormat.PUBLIC_MESSAGE)


def test_commit_without_confirmation_tag_cannot_be_framed(group: Group) -> None:
    framed = FramedContent(b"group", 5, Sender.member(SENDER_LEAF), b"", Commit())
    signed = framing.sign_content(
        group.suite,
        framed,
        sig_priv=group.sig_priv,
        wire_format=WireFormat.PUBLIC_MESSAGE,
        group_context=group.context,
    )
    with pytest.raises(ValidationError):
        framing.public_message(
            group.suite, signed, membership_key=group.membership_key, group_context=group.context
        )


def test_tampered_private_ciphertext_raises_decrypt_error(group: Group) -> None:
    message = group.private(b"frame", group.tree())
    with pytest.raises(DecryptError):
        group.read_private(
            replace(message, ciphertext=_flip_last(message.ciphertext)), group.tree()
        )


def test_tampered_sender_data_raises_decrypt_error(group: Group) -> None:
    message = group.private(b"frame", group.tree())
    tampered = replace(message, encrypted_sender_data=_flip_last(message.encrypted_sender_data))
    with pytest.raises(DecryptError):
        group.read_private(tampered, group.tree())


def test_tampered_authenticated_data_raises_decrypt_error(group: Group) -> None:
    message = group.private(b"frame", group.tree())
    with pytest.raises(DecryptError):
        group.read_private(replace(message, authenticated_data=b"other"), group.tree())


def test_replayed_private_message_raises_replay_error(group: Group) -> None:
    message, receiver = group.private(b"frame", group.tree()), group.tree()
    group.read_private(message, receiver)
    with pytest.raises(ReplayError):
        group.read_private(message, receiver)


def test_a_corrupted_copy_does_not_burn_the_generation(group: Group) -> None:
    message, receiver = group.private(b"frame", group.tree()), group.tree()
    with pytest.raises(DecryptError):
        group.read_private(replace(message, ciphertext=_flip_last(message.ciphertext)), receiver)
    assert group.read_private(message, receiver).content.content == b"frame"


def test_each_private_message_uses_a_fresh_generation_and_reuse_guard(group: Group) -> None:
    sender, receiver = group.tree(), group.tree()
    first, second = group.private(b"frame", sender), group.private(b"frame", sender)
    assert first.ciphertext != second.ciphertext
    assert group.read_private(second, receiver).content.content == b"frame"
    assert group.read_private(first, receiver).content.content == b"frame"


def test_non_zero_padding_is_rejected(group: Group) -> None:
    suite = group.suite
    plaintext = Writer()  # PrivateMessageContent with padding 00 01
    plaintext.opaque(b"frame")
    group.sign(b"frame", WireFormat.PRIVATE_MESSAGE).auth.write(plaintext)
    plaintext.raw(b"\x00\x01")
    sender_data_aad = Writer()
    sender_data_aad.opaque(b"group")
    sender_data_aad.u64(5)
    sender_data_aad.u8(ContentType.APPLICATION)
    content_aad = Writer()
    content_aad.raw(sender_data_aad.getvalue())
    content_aad.opaque(b"aad")

    # With a zero reuse guard the ratchet nonce is used as it is.
    _, key, nonce = group.tree().next(SENDER_LEAF, RatchetType.APPLICATION)
    ciphertext = suite.aead_seal(key, nonce, content_aad.getvalue(), plaintext.getvalue())
    sd_key, sd_nonce = sender_data_key_nonce(suite, group.sender_data_secret, ciphertext)
    sender_data = SenderData(SENDER_LEAF, 0, bytes(4)).encode()
    encrypted_sender_data = suite.aead_seal(
        sd_key, sd_nonce, sender_data_aad.getvalue(), sender_data
    )
    message = PrivateMessage(
        b"group", 5, ContentType.APPLICATION, b"aad", encrypted_sender_data, ciphertext
    )
    with pytest.raises(DecodeError, match="padding"):
        group.read_private(message, group.tree())
