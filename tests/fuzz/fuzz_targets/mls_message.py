"""MLS messages: `mls.structs.MLSMessage.decode` on arbitrary bytes.

Seeds are every kind of message a peer sends (KeyPackage, Welcome, Commit and Update
PublicMessages, a PrivateMessage, GroupInfo). Asserts that decoding returns a message
or raises an MLSError, that a decoded message encodes back to the same bytes, and that
the signature checks a receiver runs on a decoded KeyPackage, GroupInfo or leaf answer
True or False, never raise.
"""

from __future__ import annotations

from peertap.sidecar.mls import MLSError
from peertap.sidecar.mls.structs import GroupInfo, KeyPackage, MLSMessage, PublicMessage
from peertap.sidecar.mls.suites import get_suite

from . import world

NAME = "mls_message"
_SUITE = get_suite(world.SUITE)


def seeds() -> list[bytes]:
    return [msg.encode() for msg in world.mls_messages()]


def check(data: bytes) -> None:
    try:
        msg = MLSMessage.decode(data)
    except MLSError:
        return
    assert msg.encode() == data, "decode(encode(x)) differs"
    body = msg.body
    if isinstance(body, KeyPackage):
        assert isinstance(body.verify_signature(_SUITE), bool)
        assert isinstance(body.leaf_node.verify_signature(_SUITE), bool)
        body.ref(_SUITE)
    elif isinstance(body, GroupInfo):
        assert isinstance(body.verify_signature(_SUITE, world.node(1).public_bytes), bool)
    elif isinstance(body, PublicMessage):
        assert body.content.sender.sender_type in (1, 2, 3, 4)
