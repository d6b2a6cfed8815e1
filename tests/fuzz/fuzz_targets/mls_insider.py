"""MLS handshakes from an insider: arbitrary Proposals and Commits, signed and tagged by
a real member, processed by another member (`mls.Group.process`).

Member a (leaf 0) signs whatever Proposal or Commit the input holds, with a valid
membership tag (and, for a Commit with a path, a re-signed path leaf), so the input
reaches proposal validation and commit processing past the signature checks a
fuzzer cannot forge. Member b (restored fresh for every input) processes it. Input:
one byte (even: Proposal, odd: Commit), then the encoded Proposal or Commit. Seeds
are a's real Update proposal and Commits. Asserts that processing returns or raises
an MLSError, nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools

from peertap.sidecar.mls import Group, MLSError
from peertap.sidecar.mls import structs as s
from peertap.sidecar.mls.framing import public_message, sign_content, with_confirmation_tag
from peertap.sidecar.mls.state import GroupState, decode_state

from . import world

NAME = "mls_insider"
PROPOSAL, COMMIT = 0, 1


@functools.cache
def _sender() -> GroupState:
    return decode_state(world.mls().a_state)


def seeds() -> list[bytes]:
    w = world.mls()
    out = []
    path = None
    for msg in (w.proposal, w.commit_path, w.commit_for_c):
        body = msg.body
        assert isinstance(body, s.PublicMessage)
        content = body.content.content
        kind = COMMIT if isinstance(content, s.Commit) else PROPOSAL
        if isinstance(content, s.Commit) and content.path is not None:
            path = content.path
        assert not isinstance(content, bytes)
        out.append(bytes([kind]) + content.encode())
    remove = s.Proposal(s.Remove(1))
    out.append(bytes([PROPOSAL]) + remove.encode())
    out.append(bytes([COMMIT]) + s.Commit((s.ProposalOrRef(proposal=remove),), path).encode())
    return out


def _message(content: s.Proposal | s.Commit) -> s.MLSMessage:
    a = _sender()
    if isinstance(content, s.Commit) and content.path is not None:
        leaf = content.path.leaf_node.signed(a.suite, a.signature_private, a.context.group_id, 0)
        content = dataclasses.replace(
            content, path=dataclasses.replace(content.path, leaf_node=leaf)
        )
    framed = s.FramedContent(a.context.group_id, a.context.epoch, s.Sender.member(0), b"", content)
    auth = sign_content(
        a.suite,
        framed,
        sig_priv=a.signature_private,
        wire_format=s.WireFormat.PUBLIC_MESSAGE,
        group_context=a.context,
    )
    if isinstance(content, s.Commit):
        auth = with_confirmation_tag(auth, bytes(a.suite.nh))
    return s.MLSMessage(
        public_message(
            a.suite, auth, membership_key=a.secrets.membership_key, group_context=a.context
        )
    )


def check(data: bytes) -> None:
    if not data:
        return
    cls = s.Commit if data[0] % 2 == COMMIT else s.Proposal
    try:
        content = cls.decode(data[1:])
    except MLSError:
        return
    try:
        message = _message(content)
    except MLSError:
        return  # nothing a member could send
    with contextlib.suppress(MLSError):
        Group.restore(world.mls().b_state).process(message)
