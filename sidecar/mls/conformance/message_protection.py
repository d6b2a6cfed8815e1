"""message-protection vectors: PublicMessage and PrivateMessage, both directions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peertap.sidecar.mls import framing
from peertap.sidecar.mls.errors import MLSError, ValidationError
from peertap.sidecar.mls.secret_tree import SecretTree
from peertap.sidecar.mls.structs import (
    Commit,
    FramedContent,
    GroupContext,
    MLSMessage,
    PrivateMessage,
    Proposal,
    ProtocolVersion,
    PublicMessage,
    Sender,
    WireFormat,
)
from peertap.sidecar.mls.suites import CipherSuite, get_suite

from .result import ConformanceError, check

__all__ = ["run_case"]

SENDER = Sender.member(1)


def run_case(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    h = bytes.fromhex
    context = GroupContext(
        ProtocolVersion.MLS10,
        suite.id,
        h(case["group_id"]),
        case["epoch"],
        h(case["tree_hash"]),
        h(case["confirmed_transcript_hash"]),
    )
    keys = _Keys(
        suite,
        context,
        h(case["signature_priv"]),
        h(case["signature_pub"]),
        h(case["encryption_secret"]),
        h(case["sender_data_secret"]),
        h(case["membership_key"]),
    )
    for name, raw in (
        ("proposal", Proposal.decode(h(case["proposal"]))),
        ("commit", Commit.decode(h(case["commit"]))),
        ("application", h(case["application"])),
    ):
        try:
            _run_content(keys, case, name, raw)
        except MLSError as err:
            raise ConformanceError(name, f"{type(err).__name__}: {err}") from err


@dataclass(frozen=True)
class _Keys:
    suite: CipherSuite
    context: GroupContext
    sig_priv: bytes
    sig_pub: bytes
    encryption_secret: bytes
    sender_data_secret: bytes
    membership_key: bytes


def _run_content(keys: _Keys, case: dict[str, Any], name: str, raw: Any) -> None:
    suite, context = keys.suite, keys.context
    framed = FramedContent(context.group_id, context.epoch, SENDER, b"", raw)

    if name != "application":
        message = _body(case, f"{name}_pub", PublicMessage)
        _check_public(keys, message, raw, f"{name}_pub")
        signed = framing.sign_content(
            suite, keys.sig_priv, WireFormat.PUBLIC_MESSAGE, framed, context
        )
        if name == "commit":
            signed = framing.with_confirmation_tag(signed, bytes(suite.nh))
        mine = framing.public_message(suite, signed, keys.membership_key, context)
        _check_public(keys, PublicMessage.decode(mine.encode()), raw, f"{name}_pub (own)")
    else:
        try:
            framing.sign_content(suite, keys.sig_priv, WireFormat.PUBLIC_MESSAGE, framed, context)
        except ValidationError:
            pass
        else:
            raise ConformanceError("application", "was protected as a PublicMessage")

    tree = SecretTree(suite, keys.encryption_secret, 2)
    message_priv = _body(case, f"{name}_priv", PrivateMessage)
    _check_private(keys, tree, message_priv, raw, f"{name}_priv")
    signed = framing.sign_content(suite, keys.sig_priv, WireFormat.PRIVATE_MESSAGE, framed, context)
    if name == "commit":
        signed = framing.with_confirmation_tag(signed, bytes(suite.nh))
    # The vector's message and ours both use generation 0 of leaf 1: each exchange
    # is between a sender and a receiver that start from fresh copies of the tree.
    sender_tree = SecretTree(suite, keys.encryption_secret, 2)
    mine_priv = framing.private_message(suite, signed, sender_tree, keys.sender_data_secret)
    mine_priv = PrivateMessage.decode(mine_priv.encode())
    receiver_tree = SecretTree(suite, keys.encryption_secret, 2)
    _check_private(keys, receiver_tree, mine_priv, raw, f"{name}_priv (own)")


def _body(case: dict[str, Any], field: str, kind: type) -> Any:
    message = MLSMessage.decode(bytes.fromhex(case[field]))
    if not isinstance(message.body, kind):
        raise ConformanceError(field, f"is not a {kind.__name__}")
    return message.body


def _check_public(keys: _Keys, message: PublicMessage, raw: Any, field: str) -> None:
    content = framing.public_message_content(keys.suite, message, keys.membership_key, keys.context)
    framing.verify_content_signature(keys.suite, keys.sig_pub, content, keys.context)
    check(f"{field}.content", content.content.content, raw)
    check(f"{field}.sender", content.content.sender, SENDER)


def _check_private(
    keys: _Keys, tree: SecretTree, message: PrivateMessage, raw: Any, field: str
) -> None:
    content = framing.private_message_content(keys.suite, message, tree, keys.sender_data_secret)
    framing.verify_content_signature(keys.suite, keys.sig_pub, content, keys.context)
    check(f"{field}.content", content.content.content, raw)
    check(f"{field}.sender", content.content.sender, SENDER)
