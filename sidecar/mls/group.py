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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from . import tree_math as tm
from .commit import (
    NO_SECRETS,
    build_commit,
    find_extension,
    process_commit,
    select_pending,
    sender_key,
)
from .errors import EpochError, ValidationError
from .framing import (
    private_message,
    private_message_content,
    public_message,
    public_message_content,
    sign_content,
    verify_content_signature,
)
from .key_schedule import (
    derive_epoch,
    external_init_send,
)
from .proposals import (
    CommittedProposal,
    check_extensions_unique,
    check_proposal,
)
from .psk import PreSharedKeyID, PSKType
from .ratchet_tree import RatchetTree
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
    Welcome,
    WireFormat,
)
from .structs import (
    RatchetTree as RatchetTreeStruct,
)
from .suites import CipherSuite, get_suite
from .transcript import (
    confirmation_tag,
    interim_transcript_hash,
)
from .treekem import PathKeys
from .welcome import (
    KeyPackageBundle,
    build_welcome,
    default_capabilities,
    join_state,
    make_key_package,
    verified_tree,
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


def _now(options: GroupOptions) -> int | None:
    return None if options.clock is None else int(options.clock())


def _as_message(message: MLSMessage | bytes) -> MLSMessage:
    msg = MLSMessage.decode(message) if isinstance(message, bytes | bytearray) else message
    if msg.version != ProtocolVersion.MLS10:
        raise ValidationError(f"protocol version {msg.version}")
    return msg


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

        state = join_state(
            welcome,
            key_package_private,
            ratchet_tree,
            lookup,
            tree_now=_now(options) if options.check_tree_lifetimes else None,
        )
        state.psks = psks
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
        tree = verified_tree(
            suite,
            group_info,
            ratchet_tree,
            now=_now(options) if options.check_tree_lifetimes else None,
        )
        ext = find_extension(group_info.extensions, ExtensionType.EXTERNAL_PUB)
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
            secrets=NO_SECRETS,
            interim_transcript_hash=interim,
            confirmation_tag=group_info.confirmation_tag,
            secret_tree=SecretTree(suite, b"\0" * suite.nh, tree.n_leaves),
            psks=dict(psks or {}),
        )
        items = [CommittedProposal(p, Sender(SenderType.NEW_MEMBER_COMMIT)) for p in proposals]
        auth, new = build_commit(
            placeholder,
            items,
            [ProposalOrRef(proposal=p) for p in proposals],
            use_path=True,
            leaf_template=template,
            authenticated_data=authenticated_data,
            wire_format=WireFormat.PUBLIC_MESSAGE,
            now=_now(options),
            external_init_secret=init_secret,
        )
        message = MLSMessage(
            public_message(suite, auth, membership_key=None, group_context=context)
        )
        return cls(new.state, options), message

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
            for c in select_pending(state, by_value):
                assert c.ref is not None
                items.append(c)
                refs.append(ProposalOrRef(reference=c.ref))
        for p in by_value:
            items.append(CommittedProposal(p, me))
            refs.append(ProposalOrRef(proposal=p))
        leaf = state.tree.leaf(state.own_leaf)
        assert leaf is not None
        auth, new = build_commit(
            state,
            items,
            refs,
            use_path=path,
            leaf_template=leaf,
            authenticated_data=authenticated_data,
            wire_format=self._options.handshake_wire_format,
            now=_now(self._options),
        )
        message = self._protect_content(state, auth)
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
            suite, auth, sig_pub=sender_key(state, framed), group_context=context
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
        new_state, removed = process_commit(state, auth, now=_now(self._options))
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
