"""Proposal validation and application (RFC 9420 sections 10.1, 12.1-12.3).

``apply_proposals`` checks a committed proposal list (12.2) and applies it to a
copy of the ratchet tree in the order of 12.3; committers and receivers run the
same code, so both reject exactly the same lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .errors import ValidationError
from .psk import PreSharedKeyID, PSKType, ResumptionPSKUsage
from .ratchet_tree import (
    RatchetTree,
    check_credential_support,
    check_leaf_node,
    check_required_capabilities,
)
from .structs import (
    Add,
    Extension,
    ExtensionType,
    ExternalInit,
    GroupContext,
    GroupContextExtensions,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    PreSharedKey,
    Proposal,
    ProposalType,
    ProtocolVersion,
    ReInit,
    Remove,
    RequiredCapabilities,
    Sender,
    SenderType,
    Update,
)
from .suites import CipherSuite

__all__ = [
    "Applied",
    "CommittedProposal",
    "apply_proposals",
    "check_extensions_unique",
    "check_key_package",
    "check_proposal",
    "required_capabilities",
]

_DEFAULT_EXTENSIONS = frozenset(range(1, 6))
# proposal types whose presence makes the path mandatory (12.4)
_PATH_REQUIRED = frozenset(
    {
        ProposalType.UPDATE,
        ProposalType.REMOVE,
        ProposalType.EXTERNAL_INIT,
        ProposalType.GROUP_CONTEXT_EXTENSIONS,
    }
)
# proposal types an external sender may send (12.1.8)
_EXTERNAL_OK = frozenset(
    {
        ProposalType.ADD,
        ProposalType.REMOVE,
        ProposalType.PSK,
        ProposalType.REINIT,
        ProposalType.GROUP_CONTEXT_EXTENSIONS,
    }
)


@dataclass(frozen=True)
class CommittedProposal:
    """A proposal in a Commit, with who proposed it (the committer if by value)."""

    proposal: Proposal
    sender: Sender
    ref: bytes | None = None


@dataclass
class Applied:
    """The result of applying a proposal list to a tree copy."""

    tree: RatchetTree
    extensions: tuple[Extension, ...]
    added: list[tuple[int, KeyPackage]] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    psks: list[PreSharedKeyID] = field(default_factory=list)
    external_init: ExternalInit | None = None
    reinit: ReInit | None = None
    path_required: bool = False


def check_extensions_unique(extensions: Iterable[Extension], what: str) -> None:
    seen: set[int] = set()
    for ext in extensions:
        if ext.extension_type in seen:
            raise ValidationError(f"{what}: extension {ext.extension_type} appears twice")
        seen.add(ext.extension_type)


def required_capabilities(extensions: Iterable[Extension]) -> RequiredCapabilities | None:
    for ext in extensions:
        if ext.extension_type == ExtensionType.REQUIRED_CAPABILITIES:
            return RequiredCapabilities.decode(ext.extension_data)
    return None


def _check_supports_group_extensions(
    leaf: LeafNode, extensions: Sequence[Extension], who: str
) -> None:
    for ext in extensions:
        if ext.extension_type not in _DEFAULT_EXTENSIONS and (
            ext.extension_type not in leaf.capabilities.extensions
        ):
            raise ValidationError(f"{who}: does not support group extension {ext.extension_type}")


def check_key_package(
    suite: CipherSuite,
    kp: KeyPackage,
    *,
    group_extensions: Sequence[Extension] = (),
    now: int | None = None,
) -> None:
    """KeyPackage validation (10.1), including the leaf node checks of 7.3."""
    if kp.version != ProtocolVersion.MLS10:
        raise ValidationError(f"KeyPackage version {kp.version}")
    if kp.cipher_suite != suite.id:
        raise ValidationError(f"KeyPackage cipher suite {kp.cipher_suite}, group uses {suite.id}")
    if not kp.verify_signature(suite):
        raise ValidationError("KeyPackage signature does not verify")
    leaf = kp.leaf_node
    check_leaf_node(
        suite,
        leaf,
        group_id=b"",
        leaf_index=0,
        source=LeafNodeSource.KEY_PACKAGE,
        required=required_capabilities(group_extensions),
        now=now,
    )
    check_extensions_unique(kp.extensions, "KeyPackage")
    check_extensions_unique(leaf.extensions, "KeyPackage leaf node")
    _check_supports_group_extensions(leaf, group_extensions, "KeyPackage")
    if leaf.encryption_key == kp.init_key:
        raise ValidationError("KeyPackage init_key equals its leaf encryption_key")


def check_proposal(
    suite: CipherSuite,
    context: GroupContext,
    tree: RatchetTree,
    proposal: Proposal,
    sender: Sender,
    *,
    now: int | None = None,
) -> None:
    """Checks of one proposal that do not depend on the rest of the list (12.1)."""
    body = proposal.body
    kind = sender.sender_type
    if kind == SenderType.EXTERNAL and proposal.proposal_type not in _EXTERNAL_OK:
        raise ValidationError(f"external sender cannot propose type {proposal.proposal_type}")
    if kind == SenderType.NEW_MEMBER_PROPOSAL and not isinstance(body, Add):
        raise ValidationError("new_member_proposal sender may only propose Add")
    if isinstance(body, Add):
        check_key_package(suite, body.key_package, group_extensions=context.extensions, now=now)
    elif isinstance(body, Update):
        if kind != SenderType.MEMBER:
            raise ValidationError("Update from a non-member")
        old = tree.leaf(sender.index)
        if old is None:
            raise ValidationError(f"Update from blank leaf {sender.index}")
        leaf = body.leaf_node
        check_leaf_node(
            suite,
            leaf,
            group_id=context.group_id,
            leaf_index=sender.index,
            source=LeafNodeSource.UPDATE,
            required=required_capabilities(context.extensions),
            now=now,
        )
        check_extensions_unique(leaf.extensions, "Update leaf node")
        _check_supports_group_extensions(leaf, context.extensions, "Update leaf node")
        if leaf.encryption_key == old.encryption_key:
            raise ValidationError("Update does not change the encryption key")
    elif isinstance(body, Remove):
        if tree.leaf(body.removed) is None:
            raise ValidationError(f"Remove of blank or absent leaf {body.removed}")
    elif isinstance(body, PreSharedKey):
        psk = body.psk
        if psk.psktype == PSKType.RESUMPTION and psk.usage != ResumptionPSKUsage.APPLICATION:
            raise ValidationError("PreSharedKey proposal with reinit/branch resumption usage")
        if len(psk.psk_nonce) != suite.nh:
            raise ValidationError("psk_nonce length is not Nh")
    elif isinstance(body, ReInit):
        if body.version < context.version:
            raise ValidationError("ReInit to an older protocol version")
        check_extensions_unique(body.extensions, "ReInit")
    elif isinstance(body, GroupContextExtensions):
        check_extensions_unique(body.extensions, "GroupContextExtensions")


def _check_list_shape(
    items: Sequence[CommittedProposal], committer: Sender, *, external: bool
) -> None:
    types = [item.proposal.proposal_type for item in items]
    if external:
        if types.count(ProposalType.EXTERNAL_INIT) != 1:
            raise ValidationError("external Commit needs exactly one ExternalInit")
        if types.count(ProposalType.REMOVE) > 1:
            raise ValidationError("external Commit with more than one Remove")
        allowed = {ProposalType.EXTERNAL_INIT, ProposalType.REMOVE, ProposalType.PSK}
        if any(t not in allowed for t in types):
            raise ValidationError(
                "external Commit with a proposal other than ExternalInit/Remove/PSK"
            )
    else:
        if ProposalType.EXTERNAL_INIT in types:
            raise ValidationError("ExternalInit in a member Commit")
        if ProposalType.REINIT in types and len(types) > 1:
            raise ValidationError("ReInit together with other proposals")
    if types.count(ProposalType.GROUP_CONTEXT_EXTENSIONS) > 1:
        raise ValidationError("more than one GroupContextExtensions proposal")
    touched: set[int] = set()
    psk_ids: set[bytes] = set()
    for item in items:
        body = item.proposal.body
        if isinstance(body, Update | Remove):
            leaf = item.sender.index if isinstance(body, Update) else body.removed
            if leaf in touched:
                raise ValidationError(f"several Update/Remove proposals for leaf {leaf}")
            touched.add(leaf)
            if not external and committer.sender_type == SenderType.MEMBER:
                if isinstance(body, Update) and leaf == committer.index:
                    raise ValidationError("Commit includes an Update from the committer")
                if isinstance(body, Remove) and leaf == committer.index:
                    raise ValidationError("Commit removes the committer")
        elif isinstance(body, PreSharedKey):
            encoded = body.psk.encode()
            if encoded in psk_ids:
                raise ValidationError("the same PSK proposed twice")
            psk_ids.add(encoded)


def apply_proposals(
    suite: CipherSuite,
    context: GroupContext,
    tree: RatchetTree,
    items: Sequence[CommittedProposal],
    committer: Sender,
    *,
    now: int | None = None,
) -> Applied:
    """Validate ``items`` as a Commit's proposal list and apply them to a copy of ``tree``."""
    external = committer.sender_type == SenderType.NEW_MEMBER_COMMIT
    _check_list_shape(items, committer, external=external)
    for item in items:
        check_proposal(suite, context, tree, item.proposal, item.sender, now=now)

    new_tree = tree.copy()
    applied = Applied(new_tree, context.extensions)
    bodies = [(item.proposal.body, item.sender) for item in items]
    applied.path_required = not items or any(
        item.proposal.proposal_type in _PATH_REQUIRED for item in items
    )
    for body, _ in bodies:
        if isinstance(body, GroupContextExtensions):
            applied.extensions = body.extensions
    for body, sender in bodies:
        if isinstance(body, Update):
            new_tree.update_leaf(sender.index, body.leaf_node)
            applied.updated.append(sender.index)
    for body, _ in bodies:
        if isinstance(body, Remove):
            new_tree.remove_leaf(body.removed)
            applied.removed.append(body.removed)
    adds = [body.key_package for body, _ in bodies if isinstance(body, Add)]
    if adds:
        signature_keys = {leaf.signature_key for _, leaf in new_tree.leaves()}
        encryption_keys = new_tree.encryption_keys()
        next_free = 0
        for kp in adds:
            leaf = kp.leaf_node
            if leaf.signature_key in signature_keys:
                raise ValidationError("Add of a client already in the group (signature key)")
            if leaf.encryption_key in encryption_keys:
                raise ValidationError("Add with an encryption key already in the tree")
            signature_keys.add(leaf.signature_key)
            encryption_keys.add(leaf.encryption_key)
            index = new_tree.add_leaf(leaf, start=next_free)
            applied.added.append((index, kp))
            next_free = index + 1
    for body, _ in bodies:
        if isinstance(body, PreSharedKey):
            applied.psks.append(body.psk)
        elif isinstance(body, ExternalInit):
            applied.external_init = body
        elif isinstance(body, ReInit):
            applied.reinit = body

    if applied.updated:
        _check_updated_keys_unique(new_tree, applied.updated)
    if applied.extensions is not context.extensions:
        required = required_capabilities(applied.extensions)
        for index, leaf in new_tree.leaves():
            _check_supports_group_extensions(leaf, applied.extensions, f"leaf {index}")
            if required is not None:
                check_required_capabilities(leaf, required, index)
    if applied.added or applied.updated:
        check_credential_support(new_tree)
    return applied


def _check_updated_keys_unique(tree: RatchetTree, updated: Iterable[int]) -> None:
    targets = {tree.leaf(i) for i in updated}
    enc = {leaf.encryption_key for leaf in targets if leaf is not None}
    sig = {leaf.signature_key for leaf in targets if leaf is not None}
    for index, leaf in tree.leaves():
        if index in updated:
            continue
        if leaf.encryption_key in enc or leaf.signature_key in sig:
            raise ValidationError("Update reuses a key of another member")
    for _, node in tree.parents():
        if node.encryption_key in enc:
            raise ValidationError("Update reuses a parent node key")
