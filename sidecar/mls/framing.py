"""Message framing (RFC 9420 section 6): signing, PublicMessage, PrivateMessage.

Sending:   FramedContent -> sign_content (AuthenticatedContent)
           [Commit: with_confirmation_tag] -> public_message | private_message
Receiving: public_message_content | private_message_content -> AuthenticatedContent
           -> verify_content_signature

Functions take the keys (membership key, secret tree, sender data secret, signature
keys) as arguments and hold no group state. The caller checks what needs the tree
or the epoch: that the epoch is current, that the sender's leaf is not blank, and
which signature key belongs to the sender.
"""

from __future__ import annotations

import os
from dataclasses import replace

from .codec import Reader, Writer
from .errors import (
    DecodeError,
    EpochError,
    SignatureError,
    ValidationError,
)
from .secret_tree import RatchetType, SecretTree, sender_data_key_nonce
from .structs import (
    AuthenticatedContent,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    PrivateMessage,
    ProtocolVersion,
    PublicMessage,
    Sender,
    SenderData,
    SenderType,
    WireFormat,
    read_content,
    write_content,
)
from .suites import CipherSuite

__all__ = [
    "authenticated_content_tbm",
    "decrypt_sender_data",
    "framed_content_tbs",
    "membership_tag",
    "private_message",
    "private_message_content",
    "public_message",
    "public_message_content",
    "sign_content",
    "verify_content_signature",
    "with_confirmation_tag",
]

_CONTEXT_SENDERS = (SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT)


# -- content authentication (6.1) ------------------------------------------------------


def _write_tbs(
    w: Writer, wire_format: int, content: FramedContent, group_context: GroupContext | None
) -> None:
    w.u16(ProtocolVersion.MLS10)
    w.u16(wire_format)
    content.write(w)
    if content.sender.sender_type in _CONTEXT_SENDERS:
        if group_context is None:
            raise ValidationError("member and new_member_commit senders sign the GroupContext")
        group_context.write(w)


def framed_content_tbs(
    wire_format: int, content: FramedContent, group_context: GroupContext | None
) -> bytes:
    """FramedContentTBS; ``group_context`` is needed for member/new_member_commit senders."""
    w = Writer()
    _write_tbs(w, wire_format, content, group_context)
    return w.getvalue()


def sign_content(
    suite: CipherSuite,
    content: FramedContent,
    *,
    sig_priv: bytes,
    wire_format: int,
    group_context: GroupContext | None,
) -> AuthenticatedContent:
    """Sign ``content`` for ``wire_format``. A Commit still needs its confirmation tag
    (``with_confirmation_tag``), which the signature does not cover."""
    if wire_format == WireFormat.PUBLIC_MESSAGE and content.content_type == ContentType.APPLICATION:
        raise ValidationError("application data must be sent as a PrivateMessage")
    tbs = framed_content_tbs(wire_format, content, group_context)
    signature = suite.sign_with_label(sig_priv, "FramedContentTBS", tbs)
    return AuthenticatedContent(wire_format, content, FramedContentAuthData(signature))


def with_confirmation_tag(content: AuthenticatedContent, tag: bytes) -> AuthenticatedContent:
    if content.content.content_type != ContentType.COMMIT:
        raise ValidationError("only a Commit carries a confirmation tag")
    return replace(content, auth=replace(content.auth, confirmation_tag=tag))


def verify_content_signature(
    suite: CipherSuite,
    content: AuthenticatedContent,
    *,
    sig_pub: bytes,
    group_context: GroupContext | None,
) -> None:
    """Raise SignatureError unless the content's signature verifies under ``sig_pub``."""
    tbs = framed_content_tbs(content.wire_format, content.content, group_context)
    if not suite.verify_with_label(sig_pub, "FramedContentTBS", tbs, content.auth.signature):
        raise SignatureError("FramedContent signature does not verify")


# -- PublicMessage (6.2) ------------------------------------------------------------------


def authenticated_content_tbm(
    content: FramedContent, auth: FramedContentAuthData, group_context: GroupContext
) -> bytes:
    """AuthenticatedContentTBM: FramedContentTBS (as a PublicMessage), then the auth data."""
    w = Writer()
    _write_tbs(w, WireFormat.PUBLIC_MESSAGE, content, group_context)
    auth.write(w)
    return w.getvalue()


def membership_tag(
    suite: CipherSuite,
    *,
    membership_key: bytes,
    content: FramedContent,
    auth: FramedContentAuthData,
    group_context: GroupContext,
) -> bytes:
    return suite.mac(membership_key, authenticated_content_tbm(content, auth, group_context))


def _check_commit_tag(content: FramedContent, auth: FramedContentAuthData) -> None:
    if (content.content_type == ContentType.COMMIT) != (auth.confirmation_tag is not None):
        raise ValidationError("a confirmation tag is required on Commits and only there")


def public_message(
    suite: CipherSuite,
    content: AuthenticatedContent,
    *,
    membership_key: bytes | None,
    group_context: GroupContext,
) -> PublicMessage:
    """Frame signed content as a PublicMessage; member senders get a membership tag."""
    if content.wire_format != WireFormat.PUBLIC_MESSAGE:
        raise ValidationError("content was signed for another wire format")
    framed, auth = content.content, content.auth
    _check_commit_tag(framed, auth)
    tag = None
    if framed.sender.sender_type == SenderType.MEMBER:
        if membership_key is None:
            raise ValidationError("a member PublicMessage needs the membership key")
        tag = membership_tag(
            suite,
            membership_key=membership_key,
            content=framed,
            auth=auth,
            group_context=group_context,
        )
    return PublicMessage(framed, auth, tag)


def public_message_content(
    suite: CipherSuite,
    message: PublicMessage,
    *,
    membership_key: bytes | None,
    group_context: GroupContext,
) -> AuthenticatedContent:
    """Check group, epoch and membership tag; the signature is checked separately
    (``verify_content_signature``) with the sender's key."""
    framed, auth = message.content, message.auth
    if framed.group_id != group_context.group_id:
        raise ValidationError("PublicMessage for another group")
    if framed.epoch != group_context.epoch:
        raise EpochError(
            f"PublicMessage for epoch {framed.epoch}, group is at {group_context.epoch}"
        )
    if framed.content_type == ContentType.APPLICATION:
        raise ValidationError("application data in a PublicMessage")
    _check_commit_tag(framed, auth)
    if framed.sender.sender_type == SenderType.MEMBER:
        if membership_key is None or message.membership_tag is None:
            raise SignatureError("member PublicMessage without membership tag")
        tbm = authenticated_content_tbm(framed, auth, group_context)
        if not suite.verify_mac(membership_key, tbm, message.membership_tag):
            raise SignatureError("membership tag does not verify")
    return AuthenticatedContent(WireFormat.PUBLIC_MESSAGE, framed, auth)


# -- PrivateMessage (6.3) -----------------------------------------------------------------


def _ratchet_type(content_type: int) -> RatchetType:
    if content_type == ContentType.APPLICATION:
        return RatchetType.APPLICATION
    return RatchetType.HANDSHAKE


def _content_aad(
    group_id: bytes, epoch: int, content_type: int, authenticated_data: bytes
) -> bytes:
    w = Writer()
    w.opaque(group_id)
    w.u64(epoch)
    w.u8(content_type)
    w.opaque(authenticated_data)
    return w.getvalue()


def _sender_data_aad(group_id: bytes, epoch: int, content_type: int) -> bytes:
    w = Writer()
    w.opaque(group_id)
    w.u64(epoch)
    w.u8(content_type)
    return w.getvalue()


def _guarded(nonce: bytes, reuse_guard: bytes) -> bytes:
    head = int.from_bytes(nonce[:4], "big") ^ int.from_bytes(reuse_guard, "big")
    return head.to_bytes(4, "big") + nonce[4:]


def private_message(
    suite: CipherSuite,
    content: AuthenticatedContent,
    *,
    secret_tree: SecretTree,
    sender_data_secret: bytes,
    padding: int = 0,
) -> PrivateMessage:
    """Encrypt signed content from a member, taking the next generation of its ratchet."""
    framed, auth = content.content, content.auth
    if content.wire_format != WireFormat.PRIVATE_MESSAGE:
        raise ValidationError("content was signed for another wire format")
    if framed.sender.sender_type != SenderType.MEMBER:
        raise ValidationError("only members send PrivateMessages")
    _check_commit_tag(framed, auth)
    content_type = framed.content_type
    leaf = framed.sender.index

    w = Writer()  # PrivateMessageContent
    write_content(w, framed.content)
    auth.write(w)
    w.raw(bytes(padding))
    generation, key, nonce = secret_tree.next(leaf, _ratchet_type(content_type))
    reuse_guard = os.urandom(4)
    aad = _content_aad(framed.group_id, framed.epoch, content_type, framed.authenticated_data)
    ciphertext = suite.aead_seal(key, _guarded(nonce, reuse_guard), aad, w.getvalue())

    sd_key, sd_nonce = sender_data_key_nonce(suite, sender_data_secret, ciphertext)
    sender_data = SenderData(leaf, generation, reuse_guard).encode()
    sd_aad = _sender_data_aad(framed.group_id, framed.epoch, content_type)
    encrypted_sender_data = suite.aead_seal(sd_key, sd_nonce, sd_aad, sender_data)
    return PrivateMessage(
        framed.group_id,
        framed.epoch,
        content_type,
        framed.authenticated_data,
        encrypted_sender_data,
        ciphertext,
    )


def decrypt_sender_data(
    suite: CipherSuite, message: PrivateMessage, sender_data_secret: bytes
) -> SenderData:
    """Decrypt and decode the SenderData of ``message`` (DecryptError, DecodeError)."""
    sd_key, sd_nonce = sender_data_key_nonce(suite, sender_data_secret, message.ciphertext)
    sd_aad = _sender_data_aad(message.group_id, message.epoch, message.content_type)
    return SenderData.decode(
        suite.aead_open(sd_key, sd_nonce, sd_aad, message.encrypted_sender_data)
    )


def private_message_content(
    suite: CipherSuite,
    message: PrivateMessage,
    *,
    secret_tree: SecretTree,
    sender_data_secret: bytes,
) -> AuthenticatedContent:
    """Decrypt a PrivateMessage; the ratchet generation is consumed only on success.

    Raises DecryptError (either AEAD layer), ReplayError (generation already used),
    DecodeError (malformed plaintext or non-zero padding). The sender's leaf must be
    checked to be non-blank and the signature verified by the caller.
    """
    sender_data = decrypt_sender_data(suite, message, sender_data_secret)
    ratchet = secret_tree.ratchet(sender_data.leaf_index, _ratchet_type(message.content_type))
    key, nonce = ratchet.key_nonce(sender_data.generation)
    aad = _content_aad(
        message.group_id, message.epoch, message.content_type, message.authenticated_data
    )
    plaintext = suite.aead_open(
        key, _guarded(nonce, sender_data.reuse_guard), aad, message.ciphertext
    )
    ratchet.consume(sender_data.generation)

    r = Reader(plaintext)
    body = read_content(r, message.content_type)
    auth = FramedContentAuthData.read_for(r, message.content_type)
    padding = r.raw(r.remaining())
    if padding.count(0) != len(padding):
        raise DecodeError("non-zero padding in PrivateMessageContent")
    framed = FramedContent(
        message.group_id,
        message.epoch,
        Sender.member(sender_data.leaf_index),
        message.authenticated_data,
        body,
    )
    return AuthenticatedContent(WireFormat.PRIVATE_MESSAGE, framed, auth)
