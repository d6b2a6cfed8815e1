"""One member's state of a group in one epoch, and its versioned serialisation.

``GroupState`` is replaced, never edited, when a commit is merged: processing
builds the next state from copies and the group swaps it in only at the end,
so a rejected message leaves the current state as it was. (The secret tree is
the exception by design: decrypting an application message consumes its key.)

Saved format (``encode_state``): b"PTMLS" + u16 format version + fields in TLS
presentation syntax. Unknown versions raise ``UnsupportedError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .codec import Reader, Writer
from .errors import DecodeError, UnsupportedError
from .key_schedule import EpochSecrets
from .proposals import CommittedProposal
from .psk import PreSharedKeyID
from .ratchet_tree import RatchetTree
from .secret_tree import SecretTree
from .structs import GroupContext, Proposal, ReInit, Sender
from .suites import CipherSuite, get_suite
from .treekem import PathKeys

__all__ = ["FORMAT_VERSION", "GroupState", "decode_state", "encode_state"]

MAGIC = b"PTMLS"
FORMAT_VERSION = 1
RESUMPTION_EPOCHS_KEPT = 8


@dataclass
class GroupState:
    suite: CipherSuite
    context: GroupContext
    tree: RatchetTree
    keys: PathKeys
    signature_private: bytes
    secrets: EpochSecrets
    interim_transcript_hash: bytes
    confirmation_tag: bytes
    secret_tree: SecretTree
    # proposals received (or sent) in this epoch, by ProposalRef
    proposals: dict[bytes, CommittedProposal] = field(default_factory=dict)
    # leaf encryption keys of our own Update proposals not yet committed: public -> private
    pending_updates: dict[bytes, bytes] = field(default_factory=dict)
    # external PSKs: psk_id -> psk
    psks: dict[bytes, bytes] = field(default_factory=dict)
    # resumption PSKs of recent epochs of this group: epoch -> psk
    resumption: dict[int, bytes] = field(default_factory=dict)
    reinit: ReInit | None = None
    active: bool = True

    @property
    def own_leaf(self) -> int:
        return self.keys.leaf_index

    @property
    def epoch(self) -> int:
        return self.context.epoch

    def remember_resumption(self) -> None:
        self.resumption[self.context.epoch] = self.secrets.resumption_psk
        for epoch in sorted(self.resumption)[:-RESUMPTION_EPOCHS_KEPT]:
            del self.resumption[epoch]

    def resumption_psk(self, psk_id: PreSharedKeyID) -> bytes | None:
        if psk_id.psk_group_id != self.context.group_id:
            return None
        return self.resumption.get(psk_id.psk_epoch)


# -- serialisation -------------------------------------------------------------------


def _w_pair(w: Writer, item: tuple[bytes, bytes]) -> None:
    w.opaque(item[0])
    w.opaque(item[1])


def _r_pair(r: Reader) -> tuple[bytes, bytes]:
    return r.opaque(), r.opaque()


def _w_node_key(w: Writer, item: tuple[int, tuple[bytes, bytes]]) -> None:
    w.u32(item[0])
    _w_pair(w, item[1])


def _w_epoch_psk(w: Writer, item: tuple[int, bytes]) -> None:
    w.u64(item[0])
    w.opaque(item[1])


def encode_state(state: GroupState) -> bytes:
    w = Writer()
    w.raw(MAGIC)
    w.u16(FORMAT_VERSION)
    w.u16(state.suite.id)
    w.opaque(state.context.encode())
    w.opaque(state.tree.encode())
    w.u32(state.keys.leaf_index)
    w.vector(sorted(state.keys.keys.items()), _w_node_key)
    w.opaque(state.signature_private)
    for f in fields(EpochSecrets):
        w.opaque(getattr(state.secrets, f.name))
    w.opaque(state.interim_transcript_hash)
    w.opaque(state.confirmation_tag)
    state.secret_tree.write(w)

    def write_proposal(w: Writer, item: tuple[bytes, CommittedProposal]) -> None:
        w.opaque(item[0])
        item[1].proposal.write(w)
        item[1].sender.write(w)

    w.vector(state.proposals.items(), write_proposal)
    w.vector(state.pending_updates.items(), _w_pair)
    w.vector(state.psks.items(), _w_pair)
    w.vector(state.resumption.items(), _w_epoch_psk)
    w.optional(state.reinit, lambda w, v: v.write(w))
    w.boolean(state.active)
    return w.getvalue()


def decode_state(data: bytes) -> GroupState:
    r = Reader(data)
    if r.remaining() < len(MAGIC) or r.raw(len(MAGIC)) != MAGIC:
        raise DecodeError("not a saved MLS group state")
    version = r.u16()
    if version != FORMAT_VERSION:
        raise UnsupportedError(f"saved group state format version {version} is not supported")
    suite = get_suite(r.u16())
    context = GroupContext.decode(r.opaque())
    tree = RatchetTree.decode(suite, r.opaque())
    keys = PathKeys(r.u32())
    keys.keys = dict(r.vector(lambda r: (r.u32(), _r_pair(r))))
    signature_private = r.opaque()
    secrets = EpochSecrets(**{f.name: r.opaque() for f in fields(EpochSecrets)})
    interim, tag = r.opaque(), r.opaque()
    secret_tree = SecretTree.read(r, suite)

    def read_proposal(r: Reader) -> tuple[bytes, CommittedProposal]:
        ref = r.opaque()
        return ref, CommittedProposal(Proposal.read(r), Sender.read(r), ref)

    proposals = dict(r.vector(read_proposal))
    pending = dict(r.vector(_r_pair))
    psks = dict(r.vector(_r_pair))
    resumption = dict(r.vector(lambda r: (r.u64(), r.opaque())))
    reinit = r.optional(ReInit.read)
    active = r.boolean()
    r.done()
    if tree.tree_hash() != context.tree_hash:
        raise DecodeError("saved tree does not match the saved group context")
    return GroupState(
        suite,
        context,
        tree,
        keys,
        signature_private,
        secrets,
        interim,
        tag,
        secret_tree,
        proposals,
        pending,
        psks,
        resumption,
        reinit,
        active,
    )
