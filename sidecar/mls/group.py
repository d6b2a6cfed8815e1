"""The MLS group API the overlay uses (RFC 9420 sections 11-12, 15).

    Group.create / Group.join_from_welcome / Group.join_external
    group.propose_*()  -> proposal message (also cached for our next commit)
    group.commit()     -> CommitResult(commit_message, welcome, group_info)
    group.process(msg) -> ProcessedMessage (application data, proposal or commit)
    group.protect(data)-> PrivateMessage with application data
    group.export_secret / epoch_authenticator / epoch / members / save / restore

Every incoming message is checked on copies of the state; the group swaps in
the new state only when every check passed, so a rejected message (a typed
``MLSError``) leaves the group as it was.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from . import tree_math as tm
from .errors import EpochError, SignatureError, ValidationError
from .framing import (
    private_message,
    private_message_content,
    public_message,
    public_message_content,
    sign_content,
    verify_content_signature,
    with_confirmation_tag,
)
from .key_schedule import (
    EpochSecrets,
    derive_epoch,
    derive_epoch_from_joiner,
    external_init_receive,
    external_init_send,
)
from .proposals import (
    Applied,
    CommittedProposal,
    apply_proposals,
    check_extensions_unique,
    check_proposal,
    required_capabilities,
)
from .psk import PreSharedKeyID, PSKType, ResumptionPSKUsage
from .ratchet_tree import RatchetTree, check_credential_support, check_leaf_node, validate_tree
from .secret_tree import SecretTree
from .state import GroupState, decode_state, encode_state
from .structs import (
    Add,
    AuthenticatedContent,
    Capabilities,
    Commit,
    ContentType,
    Credential,
    Extension,
    ExtensionType,
    ExternalInit,
    ExternalPub,
    ExternalSenders,
    FramedContent,
    GroupContext,
    GroupContextExtensions,
    GroupInfo,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    MLSMessage,
    PreSharedKey,
    PrivateMessage,
    Proposal,
    ProposalOrRef,
    ProtocolVersion,
    PublicMessage,
    ReInit,
    Remove,
    Sender,
    SenderType,
    Update,
    UpdatePath,
    Welcome,
    WireFormat,
)
from .structs import (
    RatchetTree as RatchetTreeStruct,
)
from .suites import CipherSuite, get_suite
from .transcript import (
    confirmation_tag,
    confirmed_transcript_hash,
    interim_transcript_hash,
    update_transcript_hashes,
    verify_confirmation_tag,
)
from .treekem import PathKeys, create_update_path, decrypt_update_path, merge_update_path
from .welcome import (
    KeyPackageBundle,
    build_welcome,
    default_capabilities,
    make_key_package,
    open_welcome,
    resolve_psks,
)

__all__ = [
    "CommitResult",
    "Group",
    "GroupInactiveError",
    "GroupOptions",
    "KeyPackageBundle",
    "Member",
    "ProcessedMessage",
    "make_key_package",
]

Clock = Callable[[], float]


class GroupInactiveError(ValidationError):
    """The group can no longer be used: we were removed, or it was reinitialised."""


@dataclass(frozen=True)
class GroupOptions:
    """Local policy; not part of the group's shared state.

    ``clock`` None turns off LeafNode lifetime checks (RECOMMENDED on receipt,
    but a replayed log or a test vector may be older than the lifetimes in it).
    Lifetimes are checked on KeyPackages being added; the leaves of a tree we
    join are checked only with ``check_tree_lifetimes``.
    """

    clock: Clock | None = time.time
    check_tree_lifetimes: bool = False
    handshake_wire_format: int = WireFormat.PUBLIC_MESSAGE
    ratchet_tree_in_group_info: bool = True
    external_pub_in_group_info: bool = True
    padding: int = 0


@dataclass(frozen=True)
class Member:
    index: int
    credential: Credential
    signature_key: bytes
    encryption_key: bytes


@dataclass(frozen=True)
class CommitResult:
    commit_message: MLSMessage
    welcome: MLSMessage | None
    group_info: MLSMessage | None


@dataclass(frozen=True)
class ProcessedMessage:
    content_type: int
    sender: Sender
    epoch: int
    authenticated_data: bytes = b""
    application_data: bytes | None = None
    proposal: Proposal | None = None
    proposal_ref: bytes | None = None
    commit: Commit | None = None
    # commit only: we were removed by it (the group is now inactive)
    removed: bool = False
    # commit only: the committed ReInit, if any (the group is now inactive)
    reinit: ReInit | None = None


@dataclass
class _Pending:
    message: bytes
    state: GroupState


@dataclass
class _NewEpoch:
    """What a commit yields, for the committer and receivers alike."""

    state: GroupState
    joiner_secret: bytes
    psk_secret: bytes | None
    path_secrets: dict[int, bytes] = field(default_factory=dict)
    added: list[tuple[int, KeyPackage]] = field(default_factory=list)


def _now(options: GroupOptions) -> int | None:
    return None if options.clock is None else int(options.clock())


def _as_message(message: MLSMessage | bytes) -> MLSMessage:
    msg = MLSMessage.decode(message) if isinstance(message, bytes | bytearray) else message
    if msg.version != ProtocolVersion.MLS10:
        raise ValidationError(f"protocol version {msg.version}")
    return msg


def _find_extension(extensions: Iterable[Extension], ext_type: int) -> Extension | None:
    return next((e for e in extensions if e.extension_type == ext_type), None)


class Group:
    """One member's view of an MLS group."""

    def __init__(self, state: GroupState, options: GroupOptions | None = None) -> None:
        self._state = state
        self._options = options or GroupOptions()
        self._pending: _Pending | None = None

    # -- creation ----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        suite_id: int,
        *,
        signature_private: bytes,
        identity: bytes | None = None,
        credential: Credential | None = None,
        group_id: bytes | None = None,
        extensions: Sequence[Extension] = (),
        capabilities: Capabilities | None = None,
        leaf_extensions: Sequence[Extension] = (),
        psks: dict[bytes, bytes] | None = None,
        options: GroupOptions | None = None,
    ) -> Group:
        """A one-member group at epoch 0 (section 11)."""
        suite = get_suite(suite_id)
        options = options or GroupOptions()
        bundle = make_key_package(
            suite_id,
            signature_private=signature_private,
            identity=identity,
            credential=credential,
            capabilities=capabilities,
            leaf_extensions=leaf_extensions,
            now=_now(options),
        )
        leaf = bundle.key_package.leaf_node
        check_extensions_unique(extensions, "GroupContext")
        tree = RatchetTree.with_leaf(suite, leaf)
        context = GroupContext(
            ProtocolVersion.MLS10,
            suite_id,
            group_id if group_id is not None else os.urandom(suite.nh),
            0,
            tree.tree_hash(),
            b"",
            tuple(extensions),
        )
        for ext in context.extensions:
            if ext.extension_type > 5 and ext.extension_type not in leaf.capabilities.extensions:
                raise ValidationError(f"creator does not support extension {ext.extension_type}")
        secrets = derive_epoch(
            suite,
            init_secret=os.urandom(suite.nh),
            commit_secret=None,
            psk_secret=None,
            group_context=context,
        )
        tag = confirmation_tag(suite, secrets.confirmation_key, b"")
        keys = PathKeys(0)
        keys.set(0, bundle.encryption_private, leaf.encryption_key)
        state = GroupState(
            suite=suite,
            context=context,
            tree=tree,
            keys=keys,
            signature_private=signature_private,
            secrets=secrets,
            interim_transcript_hash=interim_transcript_hash(suite, b"", tag),
            confirmation_tag=tag,
            secret_tree=SecretTree(suite, secrets.encryption_secret, 1),
            psks=dict(psks or {}),
        )
        state.remember_resumption()
        return cls(state, options)

    @classmethod
    def join_from_welcome(
        cls,
        welcome: MLSMessage | Welcome | bytes,
        key_package_private: KeyPackageBundle,
        ratchet_tree: RatchetTreeStruct | bytes | None = None,
        *,
        psks: dict[bytes, bytes] | None = None,
        resumption_psks: dict[tuple[bytes, int], bytes] | None = None,
        options: GroupOptions | None = None,
    ) -> Group:
        """Join with a Welcome (12.4.3.1). ``ratchet_tree`` when not in the GroupInfo."""
        options = options or GroupOptions()
        if not isinstance(welcome, Welcome):
            body = _as_message(welcome).body
            if not isinstance(body, Welcome):
                raise ValidationError("not a Welcome message")
            welcome = body
        psks = dict(psks or {})
        resumption = resumption_psks or {}

        def lookup(psk_id: PreSharedKeyID) -> bytes | None:
            if psk_id.psktype == PSKType.EXTERNAL:
                return psks.get(psk_id.psk_id)
            return resumption.get((psk_id.psk_group_id, psk_id.psk_epoch))

        bundle = key_package_private
        suite, group_secrets, psk_secret, info = open_welcome(welcome, bundle, lookup)
        context = info.group_context
        if context.cipher_suite != suite.id or context.version != ProtocolVersion.MLS10:
            raise ValidationError("GroupInfo cipher suite or version differs from the Welcome")
        tree = _verified_tree(suite, info, ratchet_tree, options)
        my_leaf = tree.find_leaf(bundle.key_package.leaf_node)
        if my_leaf is None:
            raise ValidationError("our KeyPackage's leaf is not in the tree")
        for ext in context.extensions:
            leaf = bundle.key_package.leaf_node
            if ext.extension_type > 5 and ext.extension_type not in leaf.capabilities.extensions:
                raise ValidationError(f"group uses unsupported extension {ext.extension_type}")
        keys = PathKeys(my_leaf)
        keys.set(
            2 * my_leaf, bundle.encryption_private, bundle.key_package.leaf_node.encryption_key
        )
        if group_secrets.path_secret is not None:
            ancestor = tm.common_ancestor(2 * my_leaf, 2 * info.signer)
            fdp = [p for p, _ in tree.filtered_direct_path(info.signer)]
            if ancestor not in fdp:
                raise ValidationError("path secret for a node off the signer's path")
            keys.implant_path(tree, fdp[fdp.index(ancestor) :], group_secrets.path_secret)
        secrets = derive_epoch_from_joiner(
            suite,
            joiner_secret=group_secrets.joiner_secret,
            psk_secret=psk_secret,
            group_context=context,
        )
        verify_confirmation_tag(
            suite,
            confirmation_key=secrets.confirmation_key,
            confirmed=context.confirmed_transcript_hash,
            tag=info.confirmation_tag,
        )
        special = [
            p
            for p in group_secrets.psks
            if p.psktype == PSKType.RESUMPTION and p.usage != ResumptionPSKUsage.APPLICATION
        ]
        if special and context.epoch != 1:
            raise ValidationError("reinit/branch Welcome must start at epoch 1")
        state = GroupState(
            suite=suite,
            context=context,
            tree=tree,
            keys=keys,
            signature_private=bundle.signature_private,
            secrets=secrets,
            interim_transcript_hash=interim_transcript_hash(
                suite, context.confirmed_transcript_hash, info.confirmation_tag
            ),
            confirmation_tag=info.confirmation_tag,
            secret_tree=SecretTree(suite, secrets.encryption_secret, tree.n_leaves),
            psks=psks,
        )
        state.remember_resumption()
        return cls(state, options)

    @classmethod
    def join_external(
        cls,
        group_info: MLSMessage | GroupInfo | bytes,
        *,
        signature_private: bytes,
        identity: bytes | None = None,
        credential: Credential | None = None,
        ratchet_tree: RatchetTreeStruct | bytes | None = None,
        remove_prior: int | None = None,
        capabilities: Capabilities | None = None,
        authenticated_data: bytes = b"",
        psks: dict[bytes, bytes] | None = None,
        options: GroupOptions | None = None,
    ) -> tuple[Group, MLSMessage]:
        """Join by an external Commit (12.4.3.2): (our group, the commit to send)."""
        options = options or GroupOptions()
        if not isinstance(group_info, GroupInfo):
            body = _as_message(group_info).body
            if not isinstance(body, GroupInfo):
                raise ValidationError("not a GroupInfo message")
            group_info = body
        context = group_info.group_context
        suite = get_suite(context.cipher_suite)
        tree = _verified_tree(suite, group_info, ratchet_tree, options)
        ext = _find_extension(group_info.extensions, ExtensionType.EXTERNAL_PUB)
        if ext is None:
            raise ValidationError("GroupInfo has no external_pub extension")
        kem_output, init_secret = external_init_send(
            suite, ExternalPub.decode(ext.extension_data).external_pub
        )
        if credential is None:
            if identity is None:
                raise ValueError("join_external needs an identity or a credential")
            credential = Credential.basic(identity)
        proposals = [Proposal(ExternalInit(kem_output))]
        if remove_prior is not None:
            proposals.append(Proposal(Remove(remove_prior)))
        interim = interim_transcript_hash(
            suite, context.confirmed_transcript_hash, group_info.confirmation_tag
        )
        template = LeafNode(
            encryption_key=b"",
            signature_key=suite.signature_public_from_private(signature_private),
            credential=credential,
            capabilities=capabilities or default_capabilities(suite.id),
            leaf_node_source=LeafNodeSource.COMMIT,
        )
        placeholder = GroupState(
            suite=suite,
            context=context,
            tree=tree,
            keys=PathKeys(tree.free_leaf()),
            signature_private=signature_private,
            secrets=_NO_SECRETS,
            interim_transcript_hash=interim,
            confirmation_tag=group_info.confirmation_tag,
            secret_tree=SecretTree(suite, b"\0" * suite.nh, tree.n_leaves),
            psks=dict(psks or {}),
        )
        group = cls(placeholder, options)
        items = [CommittedProposal(p, Sender(SenderType.NEW_MEMBER_COMMIT)) for p in proposals]
        message, new = group._build_commit(
            items,
            [ProposalOrRef(proposal=p) for p in proposals],
            use_path=True,
            leaf_template=template,
            authenticated_data=authenticated_data,
            external_init_secret=init_secret,
        )
        group._state = new.state
        return group, message

    # -- read access -------------------------------------------------------------------

    @property
    def suite(self) -> CipherSuite:
        return self._state.suite

    @property
    def group_id(self) -> bytes:
        return self._state.context.group_id

    @property
    def epoch(self) -> int:
        return self._state.context.epoch

    @property
    def epoch_authenticator(self) -> bytes:
        return self._state.secrets.epoch_authenticator

    @property
    def group_context(self) -> GroupContext:
        return self._state.context

    @property
    def own_leaf_index(self) -> int:
        return self._state.own_leaf

    @property
    def active(self) -> bool:
        return self._state.active

    @property
    def pending_reinit(self) -> ReInit | None:
        return self._state.reinit

    @property
    def ratchet_tree(self) -> RatchetTreeStruct:
        return self._state.tree.to_struct()

    def members(self) -> list[Member]:
        return [
            Member(i, leaf.credential, leaf.signature_key, leaf.encryption_key)
            for i, leaf in self._state.tree.leaves()
        ]

    def export_secret(self, label: str | bytes, context: bytes, length: int) -> bytes:
        """MLS-Exporter of the current epoch (8.5)."""
        return self._state.secrets.exporter(self._state.suite, label, context, length)

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        self._state.psks[psk_id] = psk

    # -- persistence ---------------------------------------------------------------------

    def save(self) -> bytes:
        """Versioned serialisation of the group state (the pending commit is not saved)."""
        return encode_state(self._state)

    @classmethod
    def restore(cls, data: bytes, options: GroupOptions | None = None) -> Group:
        return cls(decode_state(data), options)

    # -- sending -------------------------------------------------------------------------

    def _check_can_send(self) -> None:
        if not self._state.active:
            raise GroupInactiveError("we are no longer a member of this group")
        if self._state.reinit is not None:
            raise GroupInactiveError("the group was reinitialised; use the new group")

    def _sign_and_protect(
        self, state: GroupState, content: FramedContent, wire_format: int
    ) -> tuple[MLSMessage, bytes]:
        """(message, encoded AuthenticatedContent) for a non-commit content."""
        auth = sign_content(
            state.suite,
            content,
            sig_priv=state.signature_private,
            wire_format=wire_format,
            group_context=state.context,
        )
        return self._protect_content(state, auth), auth.encode()

    def _protect_content(self, state: GroupState, auth: AuthenticatedContent) -> MLSMessage:
        if auth.wire_format == WireFormat.PUBLIC_MESSAGE:
            body: PublicMessage | PrivateMessage = public_message(
                state.suite,
                auth,
                membership_key=state.secrets.membership_key,
                group_context=state.context,
            )
        else:
            body = private_message(
                state.suite,
                auth,
                secret_tree=state.secret_tree,
                sender_data_secret=state.secrets.sender_data_secret,
                padding=self._options.padding,
            )
        return MLSMessage(body)

    def protect(self, application_data: bytes, authenticated_data: bytes = b"") -> MLSMessage:
        """Application data as a PrivateMessage of the current epoch."""
        self._check_can_send()
        state = self._state
        content = FramedContent(
            state.context.group_id,
            state.context.epoch,
            Sender.member(state.own_leaf),
            authenticated_data,
            bytes(application_data),
        )
        message, _ = self._sign_and_protect(state, content, WireFormat.PRIVATE_MESSAGE)
        return message

    def _propose(self, body: object, authenticated_data: bytes = b"") -> MLSMessage:
        self._check_can_send()
        state = self._state
        proposal = Proposal(body)  # type: ignore[arg-type]
        sender = Sender.member(state.own_leaf)
        check_proposal(
            state.suite, state.context, state.tree, proposal, sender, now=_now(self._options)
        )
        content = FramedContent(
            state.context.group_id, state.context.epoch, sender, authenticated_data, proposal
        )
        message, encoded = self._sign_and_protect(
            state, content, self._options.handshake_wire_format
        )
        ref = state.suite.make_proposal_ref(encoded)
        state.proposals[ref] = CommittedProposal(proposal, sender, ref)
        return message

    def propose_add(self, key_package: KeyPackage | MLSMessage) -> MLSMessage:
        if isinstance(key_package, MLSMessage):
            if not isinstance(key_package.body, KeyPackage):
                raise ValidationError("not a KeyPackage message")
            key_package = key_package.body
        return self._propose(Add(key_package))

    def propose_remove(self, leaf_index: int) -> MLSMessage:
        return self._propose(Remove(leaf_index))

    def propose_update(
        self,
        *,
        capabilities: Capabilities | None = None,
        extensions: Sequence[Extension] | None = None,
    ) -> MLSMessage:
        """Propose a fresh leaf encryption key (and optionally new capabilities/extensions)."""
        state = self._state
        old = state.tree.leaf(state.own_leaf)
        assert old is not None
        private, public = state.suite.generate_hpke_key_pair()
        leaf = replace(
            old,
            encryption_key=public,
            leaf_node_source=LeafNodeSource.UPDATE,
            lifetime=None,
            parent_hash=b"",
            capabilities=capabilities or old.capabilities,
            extensions=tuple(extensions) if extensions is not None else old.extensions,
        ).signed(state.suite, state.signature_private, state.context.group_id, state.own_leaf)
        message = self._propose(Update(leaf))
        state.pending_updates[public] = private
        return message

    def propose_psk(self, psk_id: bytes) -> MLSMessage:
        """Propose injecting the external PSK ``psk_id`` (it must be in our PSK store)."""
        if psk_id not in self._state.psks:
            raise ValidationError("unknown external PSK")
        nonce = os.urandom(self._state.suite.nh)
        return self._propose(PreSharedKey(PreSharedKeyID.external(psk_id, nonce)))

    def propose_group_context_extensions(self, extensions: Sequence[Extension]) -> MLSMessage:
        return self._propose(GroupContextExtensions(tuple(extensions)))

    def propose_reinit(
        self,
        *,
        group_id: bytes,
        cipher_suite: int,
        extensions: Sequence[Extension] = (),
        version: int = ProtocolVersion.MLS10,
    ) -> MLSMessage:
        return self._propose(ReInit(group_id, version, cipher_suite, tuple(extensions)))

    # -- committing ------------------------------------------------------------------------

    def commit(
        self,
        *,
        add: Sequence[KeyPackage] = (),
        remove: Sequence[int] = (),
        proposals: Sequence[Proposal] = (),
        include_pending: bool = True,
        path: bool = True,
        authenticated_data: bytes = b"",
        merge: bool = True,
    ) -> CommitResult:
        """Commit pending proposals (by reference) plus new ones (by value).

        With ``merge`` False the new epoch waits in ``pending``: call
        ``merge_pending_commit`` once the delivery service accepted the commit (or
        process the commit message itself), ``discard_pending_commit`` otherwise.
        """
        self._check_can_send()
        state = self._state
        me = Sender.member(state.own_leaf)
        by_value = [Proposal(Add(kp)) for kp in add]
        by_value += [Proposal(Remove(i)) for i in remove]
        by_value += list(proposals)
        items: list[CommittedProposal] = []
        refs: list[ProposalOrRef] = []
        if include_pending:
            for c in _select_pending(state, by_value):
                assert c.ref is not None
                items.append(c)
                refs.append(ProposalOrRef(reference=c.ref))
        for p in by_value:
            items.append(CommittedProposal(p, me))
            refs.append(ProposalOrRef(proposal=p))
        leaf = state.tree.leaf(state.own_leaf)
        assert leaf is not None
        message, new = self._build_commit(
            items, refs, use_path=path, leaf_template=leaf, authenticated_data=authenticated_data
        )
        welcome = None
        info = self._group_info(new.state)
        if new.added:
            members = []
            for index, kp in new.added:
                ancestor = tm.common_ancestor(2 * index, 2 * state.own_leaf)
                members.append((kp, new.path_secrets.get(ancestor)))
            psk_ids = [
                c.proposal.body.psk for c in items if isinstance(c.proposal.body, PreSharedKey)
            ]
            welcome = MLSMessage(
                build_welcome(
                    state.suite,
                    info,
                    joiner_secret=new.joiner_secret,
                    psk_secret=new.psk_secret,
                    psks=psk_ids,
                    new_members=members,
                )
            )
        group_info = MLSMessage(info)
        encoded = message.encode()
        if merge:
            self._state = new.state
            self._pending = None
        else:
            self._pending = _Pending(encoded, new.state)
        return CommitResult(message, welcome, group_info)

    @property
    def has_pending_commit(self) -> bool:
        return self._pending is not None

    def merge_pending_commit(self) -> None:
        if self._pending is None:
            raise ValidationError("no pending commit")
        self._state = self._pending.state
        self._pending = None

    def discard_pending_commit(self) -> None:
        self._pending = None

    def group_info(self) -> MLSMessage:
        """A signed GroupInfo for the current epoch (for external joins)."""
        return MLSMessage(self._group_info(self._state))

    def _group_info(self, state: GroupState) -> GroupInfo:
        extensions = []
        if self._options.ratchet_tree_in_group_info:
            extensions.append(Extension(ExtensionType.RATCHET_TREE, state.tree.encode()))
        if self._options.external_pub_in_group_info:
            _, external_pub = state.secrets.external_key_pair(state.suite)
            extensions.append(
                Extension(ExtensionType.EXTERNAL_PUB, ExternalPub(external_pub).encode())
            )
        return GroupInfo(
            state.context, tuple(extensions), state.confirmation_tag, state.own_leaf
        ).signed(state.suite, state.signature_private)

    def _build_commit(
        self,
        items: list[CommittedProposal],
        refs: list[ProposalOrRef],
        *,
        use_path: bool,
        leaf_template: LeafNode,
        authenticated_data: bytes,
        external_init_secret: bytes | None = None,
    ) -> tuple[MLSMessage, _NewEpoch]:
        state = self._state
        suite, context = state.suite, state.context
        external = external_init_secret is not None
        sender = Sender(SenderType.NEW_MEMBER_COMMIT) if external else Sender.member(state.own_leaf)
        applied = apply_proposals(
            suite, context, state.tree, items, sender, now=_now(self._options)
        )
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
        wire_format = WireFormat.PUBLIC_MESSAGE if external else self._options.handshake_wire_format
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
        psk_secret = self._psk_secret(state, applied.psks)
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
        if external:
            message = MLSMessage(
                public_message(suite, auth, membership_key=None, group_context=context)
            )
        else:
            message = self._protect_content(state, auth)
        keys.prune(tree)
        new_state = self._next_state(
            state, new_context, tree, keys, secrets_, confirmed, tag, applied
        )
        return message, _NewEpoch(
            new_state, secrets_.joiner_secret, psk_secret, path_secrets, applied.added
        )

    def _next_state(
        self,
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

    def _psk_secret(self, state: GroupState, ids: Sequence[PreSharedKeyID]) -> bytes | None:
        def lookup(psk_id: PreSharedKeyID) -> bytes | None:
            if psk_id.psktype == PSKType.EXTERNAL:
                return state.psks.get(psk_id.psk_id)
            return state.resumption_psk(psk_id)

        return resolve_psks(state.suite, ids, lookup)

    # -- receiving -------------------------------------------------------------------------

    def process(self, message: MLSMessage | bytes) -> ProcessedMessage:
        """Verify and apply one handshake or application message of the current epoch."""
        raw = bytes(message) if isinstance(message, bytes | bytearray) else None
        msg = _as_message(message)
        pending = self._pending
        if pending is not None and (raw if raw is not None else msg.encode()) == pending.message:
            self.merge_pending_commit()
            return ProcessedMessage(
                ContentType.COMMIT, Sender.member(self._state.own_leaf), self.epoch - 1
            )
        state = self._state
        if not state.active:
            raise GroupInactiveError("we are no longer a member of this group")
        suite, context = state.suite, state.context
        body = msg.body
        if isinstance(body, PublicMessage):
            auth = public_message_content(
                suite, body, membership_key=state.secrets.membership_key, group_context=context
            )
        elif isinstance(body, PrivateMessage):
            if body.group_id != context.group_id:
                raise ValidationError("PrivateMessage for another group")
            if body.epoch != context.epoch:
                raise EpochError(
                    f"PrivateMessage for epoch {body.epoch}, group is at {context.epoch}"
                )
            auth = private_message_content(
                suite,
                body,
                secret_tree=state.secret_tree,
                sender_data_secret=state.secrets.sender_data_secret,
            )
        else:
            raise ValidationError("only PublicMessage and PrivateMessage can be processed")
        framed = auth.content
        sender = framed.sender
        if sender.sender_type == SenderType.MEMBER and sender.index == state.own_leaf:
            raise ValidationError("message from our own leaf")
        verify_content_signature(
            suite, auth, sig_pub=self._sender_key(state, framed), group_context=context
        )
        content = framed.content
        if isinstance(content, bytes):
            return ProcessedMessage(
                ContentType.APPLICATION,
                sender,
                framed.epoch,
                framed.authenticated_data,
                application_data=content,
            )
        if isinstance(content, Proposal):
            check_proposal(suite, context, state.tree, content, sender, now=_now(self._options))
            ref = suite.make_proposal_ref(auth.encode())
            state.proposals[ref] = CommittedProposal(content, sender, ref)
            return ProcessedMessage(
                ContentType.PROPOSAL,
                sender,
                framed.epoch,
                framed.authenticated_data,
                proposal=content,
                proposal_ref=ref,
            )
        new_state, removed = self._process_commit(state, auth)
        self._state = new_state
        self._pending = None
        return ProcessedMessage(
            ContentType.COMMIT,
            sender,
            framed.epoch,
            framed.authenticated_data,
            commit=content,
            removed=removed,
            reinit=new_state.reinit,
        )

    def _sender_key(self, state: GroupState, framed: FramedContent) -> bytes:
        sender = framed.sender
        kind = sender.sender_type
        if kind == SenderType.MEMBER:
            leaf = state.tree.leaf(sender.index)
            if leaf is None:
                raise ValidationError(f"sender leaf {sender.index} is blank or absent")
            return leaf.signature_key
        if kind == SenderType.EXTERNAL:
            ext = _find_extension(state.context.extensions, ExtensionType.EXTERNAL_SENDERS)
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

    def _process_commit(
        self, state: GroupState, auth: AuthenticatedContent
    ) -> tuple[GroupState, bool]:
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
        now = _now(self._options)
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
            self._check_path_leaf(state, tree, applied, path, committer, external, now)
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
        psk_secret = self._psk_secret(state, applied.psks)
        if applied.external_init is not None:
            external_priv, _ = state.secrets.external_key_pair(suite)
            init_secret = external_init_receive(
                suite, external_priv, applied.external_init.kem_output
            )
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
        return self._next_state(
            state, new_context, tree, keys, secrets, confirmed, tag, applied
        ), False

    def _check_path_leaf(
        self,
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


_NO_SECRETS = EpochSecrets(*([b""] * 11))


def _select_pending(state: GroupState, by_value: Sequence[Proposal]) -> list[CommittedProposal]:
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


def _verified_tree(
    suite: CipherSuite,
    info: GroupInfo,
    ratchet_tree: RatchetTreeStruct | bytes | None,
    options: GroupOptions,
) -> RatchetTree:
    """The group's tree from the argument or the GroupInfo, fully validated (12.4.3.1)."""
    check_extensions_unique(info.extensions, "GroupInfo")
    context = info.group_context
    check_extensions_unique(context.extensions, "GroupContext")
    if ratchet_tree is None:
        ext = _find_extension(info.extensions, ExtensionType.RATCHET_TREE)
        if ext is None:
            raise ValidationError("no ratchet tree: not in the GroupInfo and none given")
        tree = RatchetTree.decode(suite, ext.extension_data)
    elif isinstance(ratchet_tree, bytes | bytearray):
        tree = RatchetTree.decode(suite, bytes(ratchet_tree))
    else:
        tree = RatchetTree.from_struct(suite, ratchet_tree)
    signer = tree.leaf(info.signer)
    if signer is None:
        raise ValidationError("GroupInfo signer leaf is blank")
    if not info.verify_signature(suite, signer.signature_key):
        raise SignatureError("GroupInfo signature does not verify")
    if tree.tree_hash() != context.tree_hash:
        raise ValidationError("ratchet tree does not match the GroupInfo tree hash")
    validate_tree(
        tree,
        group_id=context.group_id,
        required=required_capabilities(context.extensions),
        # lifetimes of leaves already in the tree are only RECOMMENDED checks (7.3); a
        # member that never updated would otherwise lock every later joiner out
        now=_now(options) if options.check_tree_lifetimes else None,
    )
    return tree
