"""Creating and applying Commits on a ``GroupState`` (RFC 9420 sections 12.4.1-12.4.2).

Functions of a state that return a new one: the caller (``group.Group``) frames
the result and swaps states. Nothing here changes the state it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from .errors import ValidationError
from .framing import sign_content, with_confirmation_tag
from .key_schedule import EpochSecrets, derive_epoch, external_init_receive
from .proposals import (
    Applied,
    CommittedProposal,
    apply_proposals,
    check_extensions_unique,
    required_capabilities,
)
from .psk import PreSharedKeyID, PSKType
from .ratchet_tree import RatchetTree, check_credential_support, check_leaf_node
from .secret_tree import SecretTree
from .state import GroupState
from .structs import (
    Add,
    AuthenticatedContent,
    Commit,
    Extension,
    ExtensionType,
    ExternalSenders,
    FramedContent,
    GroupContext,
    GroupContextExtensions,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    PreSharedKey,
    Proposal,
    ProposalOrRef,
    ReInit,
    Remove,
    Sender,
    SenderType,
    Update,
    UpdatePath,
    WireFormat,
)
from .transcript import (
    confirmation_tag,
    confirmed_transcript_hash,
    interim_transcript_hash,
    update_transcript_hashes,
    verify_confirmation_tag,
)
from .treekem import PathKeys, create_update_path, decrypt_update_path, merge_update_path
from .welcome import resolve_psks

__all__ = [
    "NO_SECRETS",
    "NewEpoch",
    "build_commit",
    "find_extension",
    "next_state",
    "process_commit",
    "psk_secret_for",
    "select_pending",
    "sender_key",
]

NO_SECRETS = EpochSecrets(*([b""] * 11))
"""Placeholder secrets of a joiner's state before its external commit."""


def find_extension(extensions: Iterable[Extension], ext_type: int) -> Extension | None:
    return next((e for e in extensions if e.extension_type == ext_type), None)


@dataclass
class NewEpoch:
    """What a commit yields, for the committer and receivers alike."""

    state: GroupState
    joiner_secret: bytes
    psk_secret: bytes | None
    path_secrets: dict[int, bytes] = field(default_factory=dict)
    added: list[tuple[int, KeyPackage]] = field(default_factory=list)


def build_commit(
    state: GroupState,
    items: list[CommittedProposal],
    refs: list[ProposalOrRef],
    *,
    use_path: bool,
    leaf_template: LeafNode,
    authenticated_data: bytes,
    wire_format: int,
    now: int | None,
    external_init_secret: bytes | None = None,
) -> tuple[AuthenticatedContent, NewEpoch]:
    """Sign a Commit of ``items`` and derive the epoch it starts (12.4.1).

    Returns the content with its confirmation tag, to be framed with the keys of
    ``state``'s epoch, and the new epoch.
    """
    suite, context = state.suite, state.context
    external = external_init_secret is not None
    sender = Sender(SenderType.NEW_MEMBER_COMMIT) if external else Sender.member(state.own_leaf)
    applied = apply_proposals(suite, context, state.tree, items, sender, now=now)
    if applied.path_required and not use_path:
        raise ValidationError("these proposals require a path")
    tree = applied.tree
    new_epoch = context.epoch + 1

    def context_for(tree_hash: bytes) -> bytes:
        return replace(
            context, epoch=new_epoch, tree_hash=tree_hash, extensions=applied.extensions
        ).encode()

    commit_secret = None
    path_secrets: dict[int, bytes] = {}
    keys = state.keys.copy()
    update_path: UpdatePath | None = None
    if use_path:
        me = state.own_leaf
        if external:
            me = tree.free_leaf()
            if me == tree.n_leaves:
                tree.extend()
        update_path, secrets = create_update_path(
            tree,
            me,
            leaf_template,
            signature_private=state.signature_private,
            group_id=context.group_id,
            context_for=context_for,
            exclude=[i for i, _ in applied.added],
        )
        commit_secret, path_secrets, keys = secrets.commit_secret, secrets.by_node, secrets.keys
    commit = Commit(tuple(refs), update_path)
    framed = FramedContent(context.group_id, context.epoch, sender, authenticated_data, commit)
    if external:
        wire_format = WireFormat.PUBLIC_MESSAGE
    auth = sign_content(
        suite,
        framed,
        sig_priv=state.signature_private,
        wire_format=wire_format,
        group_context=context,
    )
    confirmed = confirmed_transcript_hash(suite, state.interim_transcript_hash, auth)
    new_context = replace(
        context,
        epoch=new_epoch,
        tree_hash=tree.tree_hash(),
        confirmed_transcript_hash=confirmed,
        extensions=applied.extensions,
    )
    psk_secret = psk_secret_for(state, applied.psks)
    init_secret = state.secrets.init_secret
    if external_init_secret is not None:
        init_secret = external_init_secret
    secrets_ = derive_epoch(
        suite,
        init_secret=init_secret,
        commit_secret=commit_secret,
        psk_secret=psk_secret,
        group_context=new_context,
    )
    tag = confirmation_tag(suite, secrets_.confirmation_key, confirmed)
    auth = with_confirmation_tag(auth, tag)
    keys.prune(tree)
    new_state = next_state(state, new_context, tree, keys, secrets_, confirmed, tag, applied)
    return auth, NewEpoch(
        new_state, secrets_.joiner_secret, psk_secret, path_secrets, applied.added
    )


def next_state(
    state: GroupState,
    context: GroupContext,
    tree: RatchetTree,
    keys: PathKeys,
    secrets: EpochSecrets,
    confirmed: bytes,
    tag: bytes,
    applied: Applied,
) -> GroupState:
    new = GroupState(
        suite=state.suite,
        context=context,
        tree=tree,
        keys=keys,
        signature_private=state.signature_private,
        secrets=secrets,
        interim_transcript_hash=interim_transcript_hash(state.suite, confirmed, tag),
        confirmation_tag=tag,
        secret_tree=SecretTree(state.suite, secrets.encryption_secret, tree.n_leaves),
        psks=dict(state.psks),
        resumption=dict(state.resumption),
        reinit=applied.reinit,
    )
    new.remember_resumption()
    return new


def psk_secret_for(state: GroupState, ids: Sequence[PreSharedKeyID]) -> bytes | None:
    def lookup(psk_id: PreSharedKeyID) -> bytes | None:
        if psk_id.psktype == PSKType.EXTERNAL:
            return state.psks.get(psk_id.psk_id)
        return state.resumption_psk(psk_id)

    return resolve_psks(state.suite, ids, lookup)


def sender_key(state: GroupState, framed: FramedContent) -> bytes:
    sender = framed.sender
    kind = sender.sender_type
    if kind == SenderType.MEMBER:
        leaf = state.tree.leaf(sender.index)
        if leaf is None:
            raise ValidationError(f"sender leaf {sender.index} is blank or absent")
        return leaf.signature_key
    if kind == SenderType.EXTERNAL:
        ext = find_extension(state.context.extensions, ExtensionType.EXTERNAL_SENDERS)
        if ext is None:
            raise ValidationError("external sender but no external_senders extension")
        senders = ExternalSenders.decode(ext.extension_data).senders
        if sender.index >= len(senders):
            raise ValidationError(f"unknown external sender {sender.index}")
        if isinstance(framed.content, Commit | bytes):
            raise ValidationError("external senders may only send proposals")
        return senders[sender.index].signature_key
    if kind == SenderType.NEW_MEMBER_PROPOSAL:
        if not isinstance(framed.content, Proposal) or not isinstance(framed.content.body, Add):
            raise ValidationError("new_member_proposal must carry an Add")
        return framed.content.body.key_package.leaf_node.signature_key
    if kind == SenderType.NEW_MEMBER_COMMIT:
        if not isinstance(framed.content, Commit) or framed.content.path is None:
            raise ValidationError("new_member_commit must be a Commit with a path")
        return framed.content.path.leaf_node.signature_key
    raise ValidationError(f"unknown sender type {kind}")


def process_commit(
    state: GroupState, auth: AuthenticatedContent, *, now: int | None
) -> tuple[GroupState, bool]:
    """Apply a verified Commit to ``state`` (12.4.2): (next state, whether we were removed)."""
    suite, context = state.suite, state.context
    framed = auth.content
    commit = framed.content
    assert isinstance(commit, Commit)
    sender = framed.sender
    external = sender.sender_type == SenderType.NEW_MEMBER_COMMIT
    if sender.sender_type not in (SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT):
        raise ValidationError("Commit from a sender that may not commit")
    items = []
    for por in commit.proposals:
        if por.proposal is not None:
            items.append(CommittedProposal(por.proposal, sender))
            continue
        if external:
            raise ValidationError("external Commit with a proposal by reference")
        assert por.reference is not None
        cached = state.proposals.get(por.reference)
        if cached is None:
            raise ValidationError("Commit references an unknown proposal")
        items.append(cached)
    applied = apply_proposals(suite, context, state.tree, items, sender, now=now)
    if applied.path_required and commit.path is None:
        raise ValidationError("Commit without the path its proposals require")
    tree = applied.tree
    me = state.own_leaf
    removed = me in applied.removed
    keys = state.keys.copy()
    if me in applied.updated:
        leaf = tree.leaf(me)
        assert leaf is not None
        private = state.pending_updates.get(leaf.encryption_key)
        if private is None:
            raise ValidationError("Commit applies an Update of ours we did not make")
        keys.set(2 * me, private, leaf.encryption_key)
    new_epoch = context.epoch + 1
    commit_secret = None
    if commit.path is not None:
        path = commit.path
        if external:
            committer = tree.free_leaf()
            if committer == tree.n_leaves:
                tree.extend()
        else:
            committer = sender.index
        check_path_leaf(state, tree, applied, path, committer, external, now)
        fdp = merge_update_path(tree, committer, path)
        if not removed:
            provisional = replace(
                context,
                epoch=new_epoch,
                tree_hash=tree.tree_hash(),
                extensions=applied.extensions,
            )
            _, _, commit_secret = decrypt_update_path(
                tree,
                keys,
                committer,
                path,
                fdp,
                provisional.encode(),
                exclude=[i for i, _ in applied.added],
            )
    if removed:
        inactive = replace(state, active=False, proposals={}, pending_updates={})
        return inactive, True
    confirmed, _ = update_transcript_hashes(suite, state.interim_transcript_hash, auth)
    new_context = replace(
        context,
        epoch=new_epoch,
        tree_hash=tree.tree_hash(),
        confirmed_transcript_hash=confirmed,
        extensions=applied.extensions,
    )
    psk_secret = psk_secret_for(state, applied.psks)
    if applied.external_init is not None:
        external_priv, _ = state.secrets.external_key_pair(suite)
        init_secret = external_init_receive(suite, external_priv, applied.external_init.kem_output)
    else:
        init_secret = state.secrets.init_secret
    secrets = derive_epoch(
        suite,
        init_secret=init_secret,
        commit_secret=commit_secret,
        psk_secret=psk_secret,
        group_context=new_context,
    )
    tag = auth.auth.confirmation_tag
    verify_confirmation_tag(
        suite, confirmation_key=secrets.confirmation_key, confirmed=confirmed, tag=tag
    )
    assert tag is not None
    keys.prune(tree)
    return next_state(state, new_context, tree, keys, secrets, confirmed, tag, applied), False


def check_path_leaf(
    state: GroupState,
    tree: RatchetTree,
    applied: Applied,
    path: UpdatePath,
    committer: int,
    external: bool,
    now: int | None,
) -> None:
    """LeafNode and key checks on an incoming UpdatePath (12.4.2)."""
    leaf = path.leaf_node
    check_leaf_node(
        state.suite,
        leaf,
        group_id=state.context.group_id,
        leaf_index=committer,
        source=LeafNodeSource.COMMIT,
        required=required_capabilities(applied.extensions),
        now=now,
    )
    check_extensions_unique(leaf.extensions, "UpdatePath leaf node")
    for ext in applied.extensions:
        if ext.extension_type > 5 and ext.extension_type not in leaf.capabilities.extensions:
            raise ValidationError(f"committer does not support extension {ext.extension_type}")
    old = tree.leaf(committer)
    if not external:
        assert old is not None
        if leaf.encryption_key == old.encryption_key:
            raise ValidationError("UpdatePath leaf keeps the old encryption key")
    existing = tree.encryption_keys()
    new_keys = [leaf.encryption_key, *(n.encryption_key for n in path.nodes)]
    if len(set(new_keys)) != len(new_keys) or any(k in existing for k in new_keys):
        raise ValidationError("UpdatePath reuses an encryption key already in the tree")
    for index, other in tree.leaves():
        if index != committer and other.signature_key == leaf.signature_key:
            raise ValidationError("UpdatePath leaf reuses another member's signature key")
    unchanged = (
        old is not None
        and old.credential.credential_type == leaf.credential.credential_type
        and set(old.capabilities.credentials) == set(leaf.capabilities.credentials)
    )
    if not unchanged:  # credential support is group-wide: re-check only when it moved
        probe = tree.copy()
        probe.set_node(2 * committer, leaf)
        check_credential_support(probe)


def select_pending(state: GroupState, by_value: Sequence[Proposal]) -> list[CommittedProposal]:
    """The cached proposals a commit can include next to ``by_value`` (12.2, 12.4):
    Removes win over Updates, the latest Update per leaf wins, the committer's own
    Updates and Removes of itself are left out, as is anything that would repeat."""
    me = state.own_leaf
    cached = list(state.proposals.values())
    removed = {p.body.removed for p in by_value if isinstance(p.body, Remove)}
    removed |= {c.proposal.body.removed for c in cached if isinstance(c.proposal.body, Remove)}
    latest_update = {c.sender.index: c for c in cached if isinstance(c.proposal.body, Update)}
    added = {
        p.body.key_package.leaf_node.signature_key for p in by_value if isinstance(p.body, Add)
    }
    psks = {p.body.psk.encode() for p in by_value if isinstance(p.body, PreSharedKey)}
    has_gce = any(isinstance(p.body, GroupContextExtensions) for p in by_value)
    out: list[CommittedProposal] = []
    taken_removes = {p.body.removed for p in by_value if isinstance(p.body, Remove)}
    for c in cached:
        body = c.proposal.body
        if isinstance(body, Update):
            keep = c.sender.index not in removed and c.sender.index != me
            keep = keep and latest_update[c.sender.index] is c
        elif isinstance(body, Remove):
            keep = body.removed != me and body.removed not in taken_removes
            taken_removes.add(body.removed)
        elif isinstance(body, Add):
            key = body.key_package.leaf_node.signature_key
            keep = key not in added
            added.add(key)
        elif isinstance(body, PreSharedKey):
            keep = body.psk.encode() not in psks
            psks.add(body.psk.encode())
        elif isinstance(body, GroupContextExtensions):
            keep = not has_gce
            has_gce = True
        else:  # ReInit only alone; ExternalInit never from a member
            keep = isinstance(body, ReInit) and not by_value and not out
        if keep:
            out.append(c)
    if any(isinstance(c.proposal.body, ReInit) for c in out) and len(out) > 1:
        out = [c for c in out if not isinstance(c.proposal.body, ReInit)]
    return out
