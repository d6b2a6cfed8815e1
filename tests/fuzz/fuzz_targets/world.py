"""Valid objects the seed corpora are built from: node keys, credentials, an MLS group.

Everything is built once per process with the project's own encoders, so the seeds
are what real peers send.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peertap.sidecar import admission, ids, wire
from peertap.sidecar.identity import Identity
from peertap.sidecar.mls import Group, KeyPackageBundle, make_key_package
from peertap.sidecar.mls.structs import Credential, MLSMessage
from peertap.sidecar.private import authority

SUITE = 1
ISSUED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
EXPIRES = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def node(n: int) -> Identity:
    return Identity(Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32))


AUTHORITY = node(0xA0)
VLAN_ID = ids.vlan_id(AUTHORITY.public_bytes, "fuzz")


def credential(member: Identity, name: str) -> bytes:
    return authority.issue(
        authority=AUTHORITY,
        member_identity=name,
        member_key=member.public_bytes,
        vlan_id=VLAN_ID,
        issued=ISSUED,
        expires=EXPIRES,
    ).encode()


def key_package(member: Identity, name: str) -> KeyPackageBundle:
    return make_key_package(
        SUITE,
        signature_private=member.seed,
        credential=Credential.basic(credential(member, name)),
    )


@dataclass(frozen=True)
class Mls:
    """Members a and b in one group (epoch 1), and messages a peer could send b."""

    a_state: bytes  # a's saved group state (leaf 0), right after adding b
    b_state: bytes  # b's saved group state (leaf 1), right after joining
    joiner: KeyPackageBundle  # c's KeyPackage, which `welcome` welcomes
    key_package: MLSMessage
    commit_add: MLSMessage  # the Commit that added b (epoch 0)
    welcome: MLSMessage  # a Welcome for c into epoch 2 (never merged)
    commit_path: MLSMessage  # an empty Commit with a path, for epoch 1
    commit_for_c: MLSMessage  # the Commit that goes with `welcome`, for epoch 1
    proposal: MLSMessage  # an Update of a's leaf, for epoch 1
    application: MLSMessage  # a PrivateMessage of epoch 1
    group_info: MLSMessage


@functools.cache
def mls() -> Mls:
    a, b, c = node(1), node(2), node(3)
    group_a = Group.create(
        SUITE, signature_private=a.seed, credential=Credential.basic(credential(a, "a"))
    )
    kp_b = key_package(b, "b")
    added = group_a.commit(add=[kp_b.key_package])
    assert added.welcome is not None
    group_b = Group.join_from_welcome(added.welcome, kp_b)
    b_state = group_b.save()
    a_state = group_a.save()
    application = group_a.protect(b"\x01" + bytes(6))
    proposal = group_a.propose_update()
    commit_path = group_a.commit(include_pending=False, merge=False).commit_message
    group_a.discard_pending_commit()
    kp_c = key_package(c, "c")
    for_c = group_a.commit(add=[kp_c.key_package], include_pending=False, merge=False)
    group_a.discard_pending_commit()
    assert for_c.welcome is not None
    return Mls(
        a_state=a_state,
        b_state=b_state,
        joiner=kp_c,
        key_package=MLSMessage(kp_b.key_package),
        commit_add=added.commit_message,
        welcome=for_c.welcome,
        commit_path=commit_path,
        commit_for_c=for_c.commit_message,
        proposal=proposal,
        application=application,
        group_info=group_a.group_info(),
    )


def mls_messages() -> list[MLSMessage]:
    w = mls()
    return [
        w.key_package,
        w.commit_add,
        w.welcome,
        w.commit_path,
        w.commit_for_c,
        w.proposal,
        w.application,
        w.group_info,
    ]


# ---- protocol version 2: node credentials, signed announcements and CONTROL ------------

NOW_US = int(NOW.timestamp()) * 1_000_000


def node_credential(member: Identity, name: str, *, signer: Identity = AUTHORITY) -> bytes:
    return admission.issue(
        authority=signer,
        node_key=member.public_bytes,
        identity=name,
        not_before=ISSUED,
        not_after=EXPIRES,
    ).encode()


def announce(origin: Identity, sequence: int, tokens: tuple[bytes, ...]) -> bytes:
    unsigned = wire.Announce(4, origin.public_bytes, VLAN_ID, sequence, 0, tokens)
    return replace(unsigned, signature=origin.private_key.sign(unsigned.signed_part())).encode()
