"""CONTROL bodies: `private.messages` Hello, KeyPackageOffer, EpochMessage, Part and
Directed decoders,
the `private.handshake` helpers that read the MLS message inside, and the MACPROBE
application data (`private.macprobe.MacMessage`).

Input: one byte (the CONTROL kind; 0 means a MACPROBE's decrypted application data),
then the body. Asserts that each decoder returns a value or raises MalformedControl
(the handshake helpers also MLSError), that decoded bodies encode back to the same
bytes, and that the leaves a Commit brings in are the KeyPackages it adds plus its path.
"""

from __future__ import annotations

from peertap.sidecar.mls import MLSError
from peertap.sidecar.private import handshake as hs
from peertap.sidecar.private import messages as m
from peertap.sidecar.private.macprobe import PROBE, RESPONSE, MacMessage

from . import world

NAME = "control_bodies"
MAC_DATA = 0


def seeds() -> list[bytes]:
    w = world.mls()
    tag = m.group_tag(b"group")
    hello = m.Hello(tag, 1, b"\x01" * 16, 2, world.credential(world.node(1), "a"))
    no_group = m.Hello(m.NO_GROUP, 0, bytes(16), 0, world.credential(world.node(2), "b"))

    def epoch_msg(kind: int, msg: bytes) -> bytes:
        return bytes([kind]) + m.EpochMessage(tag, 1, msg).encode()

    return [
        bytes([m.HELLO]) + hello.encode(),
        bytes([m.HELLO]) + no_group.encode(),
        bytes([m.KEYPACKAGE]) + m.KeyPackageOffer(tag, w.key_package.encode()).encode(),
        epoch_msg(m.COMMIT, w.commit_add.encode()),
        epoch_msg(m.COMMIT, w.commit_path.encode()),
        epoch_msg(m.COMMIT, w.commit_for_c.encode()),
        epoch_msg(m.WELCOME, w.welcome.encode()),
        epoch_msg(m.PROPOSAL, w.proposal.encode()),
        epoch_msg(m.MACPROBE, w.application.encode()),
        bytes([MAC_DATA]) + MacMessage(PROBE, b"\x02" * 6).encode(),
        bytes([MAC_DATA]) + MacMessage(RESPONSE, b"\x02\x00\x00\x00\x00\x01").encode(),
        bytes([m.PART]) + m.Part(tag, m.WELCOME, 0, 2, w.welcome.encode()[:100]).encode(),
        bytes([m.HELLO]) + m.Hello(tag, 1, b"\x01" * 16, 2, b"", b"\x07" * 16).encode(),
        bytes([m.DIRECTED])
        + m.Directed((b"\x03" * 32,), m.WELCOME, m.EpochMessage(tag, 1, b"w").encode()).encode(),
    ]


def _handshake(kind: int, message: bytes) -> None:
    try:
        if kind == m.KEYPACKAGE:
            kp = hs.key_package(message)
            assert kp.encode() == message[4:]
        elif kind == m.COMMIT:
            _, commit = hs.commit(message)
            leaves = hs.new_leaves(commit)
            added = hs.added(commit)
            assert leaves[: len(added)] == [kp.leaf_node for kp in added]
            assert len(leaves) == len(added) + (commit.path is not None)
        elif kind == m.PROPOSAL:
            hs.proposal(message)
    except (m.MalformedControl, MLSError):
        pass


def check(data: bytes) -> None:
    if not data:
        return
    kind, body = data[0], data[1:]
    try:
        if kind == MAC_DATA:
            mac = MacMessage.decode(body)
            assert mac.encode() == body
        elif kind == m.HELLO:
            hello = m.Hello.decode(body)
            assert hello.encode() == body
        elif kind == m.PART:
            part = m.Part.decode(body)
            assert part.encode() == body
        elif kind == m.DIRECTED:
            directed = m.Directed.decode(body)
            assert directed.encode() == body
        elif kind == m.KEYPACKAGE:
            offer = m.KeyPackageOffer.decode(body)
            assert offer.encode() == body
            _handshake(kind, offer.message)
        else:
            msg = m.EpochMessage.decode(body)
            assert msg.encode() == body
            _handshake(kind, msg.message)
    except m.MalformedControl:
        pass
