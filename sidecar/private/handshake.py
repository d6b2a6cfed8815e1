"""MLS handshake content carried by CONTROL packets: decoded and typed for PrivateVlan.

Each helper takes the MLSMessage bytes of a KEYPACKAGE, PROPOSAL or COMMIT body and
returns what the member must check before handing the message to its MLS group
(credentials of every leaf it brings in); a message of the wrong shape raises
MalformedControl.
"""

from __future__ import annotations

from ..mls.structs import (
    Add,
    Commit,
    KeyPackage,
    LeafNode,
    MLSMessage,
    Proposal,
    PublicMessage,
)
from .messages import MalformedControl


def key_package(message: bytes) -> KeyPackage:
    kp = MLSMessage.decode(message).body
    if not isinstance(kp, KeyPackage):
        raise MalformedControl("KEYPACKAGE without a KeyPackage")
    return kp


def proposal(message: bytes) -> tuple[MLSMessage, Proposal]:
    mls = MLSMessage.decode(message)
    body = mls.body
    if not isinstance(body, PublicMessage) or not isinstance(body.content.content, Proposal):
        raise MalformedControl("PROPOSAL without a public Proposal")
    return mls, body.content.content


def commit(message: bytes) -> tuple[MLSMessage, Commit]:
    mls = MLSMessage.decode(message)
    body = mls.body
    if not isinstance(body, PublicMessage) or not isinstance(body.content.content, Commit):
        raise MalformedControl("COMMIT without a public Commit")
    return mls, body.content.content


def added(commit: Commit) -> list[KeyPackage]:
    """KeyPackages a Commit adds by value (ours are never by reference)."""
    return [
        por.proposal.body.key_package
        for por in commit.proposals
        if por.proposal is not None and isinstance(por.proposal.body, Add)
    ]


def new_leaves(commit: Commit) -> list[LeafNode]:
    """Every leaf a Commit brings in: added members, and the committer's path leaf."""
    leaves = [kp.leaf_node for kp in added(commit)]
    if commit.path is not None:
        leaves.append(commit.path.leaf_node)
    return leaves
