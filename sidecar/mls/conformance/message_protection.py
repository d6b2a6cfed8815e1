"""message-protection vectors: PublicMessage and PrivateMessage, both directions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import framing
from ..errors import MLSError, ValidationError
from ..secret_tree import SecretTree
from ..structs import (
    AuthenticatedContent,
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
from ..suites import CipherSuite, get_suite
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

    def secret_tree(self) -> SecretTree:
        """A fresh secret tree for the two-member group of the vector."""
        return SecretTree(self.suite, self.encryption_secret, 2)


def _run_content(keys: _Keys, case: dict[str, Any], name: str, raw: Any) -> None:
    if name != "application":
        _check_public(keys, _body(case, f"{name}_pub", PublicMessage), raw, f"{name}_pub")
        signed = _sign(keys, raw, WireFormat.PUBLIC_MESSAGE)
        mine = framing.public_message(
            keys.suite, signed, membership_key=keys.membership_key, group_context=keys.context
        )
        _check_public(keys, PublicMessage.decode(mine.encode()), raw, f"{name}_pub (own)")
    else:
        try:
            _sign(keys, raw, WireFormat.PUBLIC_MESSAGE)
        except ValidationError:
            pass
        else:
            raise ConformanceError("application", "was protected as a PublicMessage")

    # The vector's message and ours both use generation 0 of leaf 1: each exchange
    # is between a sender and a receiver that start from fresh copies of the tree.
    message = _body(case, f"{name}_priv", PrivateMessage)
    _check_private(keys, message, raw, f"{name}_priv")
    mine_priv = framing.private_message(
        keys.suite,
        _sign(keys, raw, WireFormat.PRIVATE_MESSAGE),
        secret_tree=keys.secret_tree(),
        sender_data_secret=keys.sender_data_secret,
    )
    _check_private(keys, PrivateMessage.decode(mine_priv.encode()), raw, f"{name}_priv (own)")


def _sign(keys: _Keys, raw: Any, wire_format: int) -> AuthenticatedContent:
    context = keys.context
    framed = FramedContent(context.group_id, context.epoch, SENDER, b"", raw)
    signed = framing.sign_content(
        keys.suite, framed, sig_priv=keys.sig_priv, wire_format=wire_format, group_context=context
    )
    if isinstance(raw, Commit):  # any tag will do: it is not checked here
        signed = framing.with_confirmation_tag(signed, bytes(keys.suite.nh))
    return signed


def _body(case: dict[str, Any], field: str, kind: type) -> Any:
    message = MLSMessage.decode(bytes.fromhex(case[field]))
    if not isinstance(message.body, kind):
        raise ConformanceError(field, f"is not a {kind.__name__}")
    return message.body


def _check_public(keys: _Keys, message: PublicMessage, raw: Any, field: str) -> None:
    content = framing.public_message_content(
        keys.suite, message, membership_key=keys.membership_key, group_context=keys.context
    )
    _check_content(keys, content, raw, field)


def _check_private(keys: _Keys, message: PrivateMessage, raw: Any, field: str) -> None:
    content = framing.private_message_content(
        keys.suite,
        message,
        secret_tree=keys.secret_tree(),
        sender_data_secret=keys.sender_data_secret,
    )
    _check_content(keys, content, raw, field)


def _check_content(keys: _Keys, content: AuthenticatedContent, raw: Any, field: str) -> None:
    framing.verify_content_signature(
        keys.suite, content, sig_pub=keys.sig_pub, group_context=keys.context
    )
    check(f"{field}.content", content.content.content, raw)
    check(f"{field}.sender", content.content.sender, SENDER)
