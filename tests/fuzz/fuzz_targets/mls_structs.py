"""MLS wire structs a peer can send, one by one: `Struct.decode` of each on arbitrary bytes.

Input: one byte choosing the struct (KeyPackage, LeafNode, Welcome, GroupInfo,
PublicMessage, PrivateMessage, Commit, Proposal, UpdatePath, RatchetTree,
GroupSecrets, GroupContext, Credential, Capabilities, ExternalSenders,
PreSharedKeyID, SenderData), then its encoding. Asserts that decoding returns a
value or raises an MLSError, and that the value encodes back to the same bytes.
"""

from __future__ import annotations

import functools
from typing import Any

from peertap.sidecar.mls import MLSError
from peertap.sidecar.mls import structs as s
from peertap.sidecar.mls.psk import PreSharedKeyID

from . import world

NAME = "mls_structs"
STRUCTS: tuple[Any, ...] = (
    s.KeyPackage,
    s.LeafNode,
    s.Welcome,
    s.GroupInfo,
    s.PublicMessage,
    s.PrivateMessage,
    s.Commit,
    s.Proposal,
    s.UpdatePath,
    s.RatchetTree,
    s.GroupSecrets,
    s.GroupContext,
    s.Credential,
    s.Capabilities,
    s.ExternalSenders,
    PreSharedKeyID,
    s.SenderData,
)


@functools.cache
def _examples() -> list[Any]:
    w = world.mls()
    kp = w.key_package.body
    welcome = w.welcome.body
    info = w.group_info.body
    assert isinstance(kp, s.KeyPackage)
    assert isinstance(welcome, s.Welcome)
    assert isinstance(info, s.GroupInfo)
    out: list[Any] = [kp, kp.leaf_node, kp.leaf_node.credential, kp.leaf_node.capabilities]
    out += [welcome, info, info.group_context]
    for ext in info.extensions:
        if ext.extension_type == s.ExtensionType.RATCHET_TREE:
            out.append(s.RatchetTree.decode(ext.extension_data))
    for msg in (w.commit_add, w.commit_path, w.commit_for_c, w.proposal, w.application):
        body = msg.body
        out.append(body)
        if isinstance(body, s.PublicMessage):
            content = body.content.content
            out.append(content)
            if isinstance(content, s.Commit):
                if content.path is not None:
                    out.append(content.path)
                out += [p.proposal for p in content.proposals if p.proposal is not None]
    psk = PreSharedKeyID.resumption(1, b"group", 3, b"n" * 32)
    out += [
        s.GroupSecrets(b"j" * 32, b"p" * 32, (PreSharedKeyID.external(b"id", b"n" * 32), psk)),
        s.GroupSecrets(b"j" * 32),
        psk,
        s.ExternalSenders((s.ExternalSender(b"k" * 32, s.Credential.basic(b"x")),)),
        s.Credential.x509((b"der1", b"der2")),
        s.SenderData(1, 2, b"abcd"),
    ]
    return out


def seeds() -> list[bytes]:
    out = []
    for value in _examples():
        out.append(bytes([STRUCTS.index(type(value))]) + value.encode())
    return out


def check(data: bytes) -> None:
    if not data:
        return
    cls = STRUCTS[data[0] % len(STRUCTS)]
    body = data[1:]
    try:
        value = cls.decode(body)
    except MLSError:
        return
    assert value.encode() == body, f"{cls.__name__}: decode(encode(x)) differs"
