"""A private VLAN member's CONTROL intake: `private.vlan.PrivateVlan.on_control` with
validly signed CONTROL packets of every kind and arbitrary bodies.

Member b of a two-member group (a fresh PrivateVlan for every input) takes the
packet, signed by the node the input names (a, b's fellow member; c, a joiner; or
an outsider), as the node hands it on after checking the signature, so the body
reaches the HELLO, KeyPackage, Commit, Update proposal and MAC probe handlers.
Input: signer (u8: 0 a, 1 c, 2 an outsider), kind (u8), then the body. Seeds are
what a and c really send.
`on_control` must never raise; asserts also that it never gets as far as its
catch-all for unexpected errors (counted `mvlan_error`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from peertap.sidecar.counters import Counters
from peertap.sidecar.crypto.mls_keys import MlsKeyProvider
from peertap.sidecar.mls import Group
from peertap.sidecar.mls.structs import MLSMessage
from peertap.sidecar.private import chunks, envelope
from peertap.sidecar.private import messages as m
from peertap.sidecar.private.lifecycle import PrivateSettings
from peertap.sidecar.private.macprobe import MacClaim
from peertap.sidecar.private.vlan import PrivateVlan

from . import world

NAME = "private_vlan"
_SIGNERS = (1, 3, 7)  # a (member), c (joiner), an outsider; b (2) is the receiver
A, C = 0, 1
_MAC = b"\x02\x00\x00\x00\x00\x01"
logging.getLogger("peertap.private").setLevel(logging.CRITICAL)


async def _emit(vlan_id: bytes, messages: Sequence[tuple[int, bytes]]) -> bool:
    return True


@functools.cache
def _tag() -> bytes:
    return m.group_tag(Group.restore(world.mls().b_state).group_id)


def _member() -> tuple[PrivateVlan, Counters]:
    counters = Counters()
    b = world.node(2)
    pv = PrivateVlan(
        vlan_id=world.VLAN_ID,
        creator=world.AUTHORITY.public_bytes,
        node=b,
        credential=world.credential(b, "b"),
        settings=PrivateSettings(rekey_interval_s=60, member_timeout_s=30, epoch_grace_s=60),
        keys=MlsKeyProvider(vlan_id=world.VLAN_ID, grace_s=60),
        emit=_emit,
        connected=lambda: True,
        on_epoch=lambda: None,
        counters=counters,
        clock=lambda: 100.0,
        wall=lambda: world.NOW,
        mac=MacClaim(public=b.public_bytes, vlan_id=world.VLAN_ID, mac=_MAC, derived=True),
    )
    pv._enter(Group.restore(world.mls().b_state))
    return pv, counters


def seeds() -> list[bytes]:
    w = world.mls()
    tag = _tag()
    hello = m.Hello(tag, 1, bytes(16), 2, world.credential(world.node(1), "a"))
    offer = m.KeyPackageOffer(tag, MLSMessage(w.joiner.key_package).encode())

    def epoch_msg(kind: int, msg: bytes) -> bytes:
        return bytes([A, kind]) + m.EpochMessage(tag, 1, msg).encode()

    return [
        bytes([A, m.HELLO]) + hello.encode(),
        bytes([C, m.HELLO])
        + m.Hello(m.NO_GROUP, 0, bytes(16), 0, world.credential(world.node(3), "c")).encode(),
        bytes([C, m.KEYPACKAGE]) + offer.encode(),
        epoch_msg(m.COMMIT, w.commit_path.encode()),
        epoch_msg(m.COMMIT, w.commit_for_c.encode()),
        epoch_msg(m.PROPOSAL, w.proposal.encode()),
        epoch_msg(m.MACPROBE, w.application.encode()),
        epoch_msg(m.WELCOME, w.welcome.encode()),
        *(
            bytes([C, kind]) + body
            for kind, body in chunks.split(
                m.KEYPACKAGE, offer.encode(), part_data=512, max_body=512
            )[:2]
        ),
    ]


def check(data: bytes) -> None:
    if len(data) < 2:
        return
    signer = world.node(_SIGNERS[data[0] % len(_SIGNERS)])
    msg = envelope.sign(
        signer,
        hop_limit=1,
        timestamp=world.NOW_US,
        vlan_id=world.VLAN_ID,
        kind=data[1],
        body=data[2:],
    )
    pv, counters = _member()
    pv.on_control(msg)
    assert counters.drops["mvlan_error"] == 0, "an unexpected error in a CONTROL handler"
