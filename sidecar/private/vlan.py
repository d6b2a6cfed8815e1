"""One private VLAN (security "mls"): this node's MLS group member, driven over the MVLAN.

The node starts one PrivateVlan per mls VLAN and hands it every verified
CONTROL packet for that VLAN (`on_control`); `run` is its task. It joins or
founds the group, commits as the committer, and installs each epoch's frame
key into the VLAN port's MlsKeyProvider. Rules: lifecycle.py; formats: messages.py;
messages of any size travel as PARTs (chunks.py); the protocol: docs/protocol.md,
"Private VLAN group lifecycle".

Credentials (credentials.py) are checked on every HELLO, every KeyPackage,
every Update proposal, every leaf a commit brings in, every leaf of a tree we are
welcomed into, and again by the committer each round (members whose credential
expired are removed). Members other than the committer propose an Update of their
leaf about every rekey interval; every member probes its MAC inside the group
(macprobe.py). A commit is atomic: the new epoch is installed only once its COMMIT and
WELCOME were accepted for sending, else the node stays at the old epoch.

Most HELLOs name the member's credential by a digest (credential_book.py), resolved
from the group's tree or an earlier full HELLO of the same signer; a Welcome travels
DIRECTED toward its joiners (routes.py) and is flooded again if a joiner stays silent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from .. import wire
from ..counters import Counters
from ..crypto.mls_keys import MlsKeyProvider, frame_key_from_exporter
from ..identity import Identity
from ..mls import Group, KeyPackageBundle, MLSError, make_key_package
from ..mls.errors import DecryptError, SignatureError
from ..mls.group import Member
from ..mls.structs import Credential, KeyPackage, MLSMessage, Update
from . import authority, chunks, credential_book
from . import handshake as hs
from . import lifecycle as lc
from . import messages as m
from .credential_book import CredentialBook
from .credentials import CredentialCheck
from .lifecycle import PrivateSettings
from .macprobe import MacClaim, MacProber, bind_claim
from .revocation import RevocationBook

log = logging.getLogger("peertap.private")

# MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519: its signature key is the node key.
SUITE = 1
TICK_S = 0.25
# Distinct (epoch, MLS-ID) views of our group remembered between ticks.
MAX_VIEWS = 64
# Init keys of KeyPackages already added (a joiner republishes the same one until welcomed).
MAX_CONSUMED = 4096
# HELLOs naming a credential we do not know yet (by digest), kept, the latest per signer,
# until a Welcome brings the tree that holds it.
MAX_UNRESOLVED = 4096

# Welcomes sent toward their joiners, watched until WELCOME_REFLOOD_S later (vlan.py).
WELCOME_REFLOOD_S = 2.0
MAX_WATCHED_WELCOMES = 16

# A message to send: kind, body, and the node keys it is for (empty: everyone).
Outgoing = tuple[int, bytes, tuple[bytes, ...]]


def _packets(kind: int, body: bytes, to: tuple[bytes, ...]) -> list[tuple[int, bytes]]:
    """The CONTROL packets (kind, body) of one message: PARTs if it is too large for one,
    each wrapped in DIRECTED if the message is for the nodes `to` only."""
    if not to:
        return chunks.split(kind, body)
    extra = m.directed_overhead(len(to))
    pieces = chunks.split(
        kind, body, part_data=chunks.PART_DATA_MAX - extra, max_body=chunks.BODY_MAX - extra
    )
    return [(m.DIRECTED, m.Directed(to, k, b).encode()) for k, b in pieces]


# Sends (kind, body) CONTROL messages of a VLAN in order, all or none; True once accepted
# for sending (towards at least one peer).
Emit = Callable[[bytes, Sequence[tuple[int, bytes]]], Awaitable[bool]]


@dataclass
class Heard:
    at: float
    hello: m.Hello


class PrivateVlan:
    def __init__(
        self,
        *,
        vlan_id: bytes,
        creator: bytes,
        node: Identity,
        credential: bytes,
        settings: PrivateSettings,
        keys: MlsKeyProvider,
        emit: Emit,
        connected: Callable[[], bool],
        on_epoch: Callable[[], None],
        counters: Counters,
        reload: Callable[[], bytes | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        mac: MacClaim | None = None,
        revocations: RevocationBook | None = None,
        credential_cache: dict[bytes, authority.MemberCredential] | None = None,
    ) -> None:
        self.vlan_id = vlan_id
        self.creator = creator
        self.node = node
        self.own_key = node.public_bytes
        self.credential = credential
        self.settings = settings
        self.keys = keys
        self._emit = emit
        self._connected = connected
        self._on_epoch = on_epoch
        self.counters = counters
        self._clock = clock
        self._wall = wall
        self._reload = reload
        self.group: Group | None = None
        self.tag = m.NO_GROUP
        self._bundle: KeyPackageBundle | None = None
        self._target = m.NO_GROUP
        self._connected_since: float | None = None
        self._join_jitter = random.uniform(0, settings.join_jitter_s)
        self._last_hello = float("-inf")
        self._last_offer = float("-inf")
        self._heard: dict[bytes, Heard] = {}
        # Indexes of _heard that ticks read: each group tag's latest HELLO (when, members),
        # and the (epoch, MLS-ID) views of our own group with when each was last heard.
        self._groups: dict[bytes, tuple[float, int]] = {}
        self._views: dict[tuple[int, bytes], float] = {}
        self._offers: dict[bytes, tuple[KeyPackage, float]] = {}
        self._consumed: set[bytes] = set()
        self._since: dict[bytes, float] = {}
        self._epoch_since = clock()
        self._behind_since: float | None = None
        self._self_update = lc.SelfUpdate(settings.rekey_interval_s)
        # Epoch for which Update proposals of members wait to be committed.
        self._updates_epoch: int | None = None
        # A commit that referenced a proposal not yet here: retried when one arrives.
        self._early_commit: m.EpochMessage | None = None
        self.mac_probe = None if mac is None else MacProber(mac, counters=counters)
        self.revocations = revocations
        self._creds = CredentialCheck(
            creator=creator,
            vlan_id=vlan_id,
            counters=counters,
            wall=wall,
            cache=credential_cache,
            revoked=lambda key: revocations is not None and revocations.is_revoked(key),
        )
        self._roster_key: tuple[int, int] | None = None
        self._roster_list: list[Member] = []
        self._roster_by_key: dict[bytes, Member] = {}
        self._own: Member | None = None
        # Small HELLOs (credential_book.py): credentials verified from full HELLOs of nodes
        # outside our group (our group's are in its tree), HELLOs whose digest we could
        # not resolve yet, and whether our next HELLO must carry our whole credential.
        self._book = CredentialBook()
        self._unresolved: OrderedDict[bytes, tuple[float, m.Hello]] = OrderedDict()
        self._full_due = True
        self._own_digest = (b"", b"")
        self._parts = chunks.Reassembler(counters=counters, clock=clock)
        # A joiner's HELLO (or another group's) waits for an answer: our HELLO, at once.
        self._answer_due = False
        self._last_answer = float("-inf")
        # Welcomes we sent toward their joiners: (when, WELCOME body, joiners' node keys).
        self._welcomes: list[tuple[float, bytes, tuple[bytes, ...]]] = []
        self._found_at: float | None = None
        self._reoffer = False
        self._wake = trio.Event()
        # Why our own credential is not valid now (None while it is): a node that holds no
        # valid credential neither founds a group nor offers to join one, since no member
        # would accept it; it waits for a renewed credential instead.
        self._own_invalid: str | None = None
        self._own_checked = float("-inf")
        self._own_credential_ok(clock())

    # ---- receiving ----------------------------------------------------------------------

    def on_control(self, msg: wire.Control) -> None:
        """Handle one verified CONTROL packet for this VLAN (never raises on bad input)."""
        if msg.signer == self.own_key:
            return
        try:
            if msg.kind == m.PART:
                whole = self._parts.add(msg.signer, m.Part.decode(msg.body))
                if whole is not None:
                    kind, body = whole
                    self.on_control(dataclasses.replace(msg, kind=kind, body=body))
                return
            if msg.kind == m.DIRECTED:
                directed = m.Directed.decode(msg.body)
                if self.own_key in directed.destinations:
                    self.on_control(
                        dataclasses.replace(msg, kind=directed.kind, body=directed.body)
                    )
                return
            if msg.kind == m.HELLO:
                self._on_hello(msg.signer, m.Hello.decode(msg.body))
            elif msg.kind == m.KEYPACKAGE:
                self._on_offer(msg.signer, m.KeyPackageOffer.decode(msg.body))
            elif msg.kind == m.COMMIT:
                self._on_commit(m.EpochMessage.decode(msg.body))
            elif msg.kind == m.WELCOME:
                self._on_welcome(m.EpochMessage.decode(msg.body))
            elif msg.kind == m.PROPOSAL:
                self._on_proposal(m.EpochMessage.decode(msg.body))
            elif msg.kind == m.MACPROBE:
                self._on_mac_probe(m.EpochMessage.decode(msg.body))
            elif msg.kind == m.REVOCATION:
                if self.revocations is not None and self.revocations.offer(msg.body):
                    self._revoked_now()
            else:
                self.counters.drop("mvlan_kind")
        except (m.MalformedControl, MLSError) as err:
            log.debug("vlan %s: bad %s: %s", self.vlan_id.hex(), m.KINDS.get(msg.kind), err)
            self.counters.drop("mvlan_malformed")
        except Exception:
            # Input from the network must never stop the node; a bug here is logged loudly.
            log.exception("vlan %s: error handling a %s", self.vlan_id.hex(), m.KINDS.get(msg.kind))
            self.counters.drop("mvlan_error")

    def _on_hello(self, signer: bytes, hello: m.Hello) -> None:
        now = self._clock()
        try:
            if hello.credential:
                cred = self._creds.check(hello.credential, signer)
                leaf = self._leaf_of(signer)
                if leaf is None or leaf.credential.identity != hello.credential:
                    self._book.learn(signer, hello.credential, cred)
                self._unresolved.pop(signer, None)
            else:
                known_cred = self._known_credential(signer, hello.digest)
                if known_cred is None:
                    self._unresolvable(signer, hello, now)
                    return
                self._creds.valid(known_cred, signer)
                self.counters.inc("mvlan_hello_digests")
        except authority.CredentialError as err:
            self.counters.drop(f"mvlan_rejected_{err.reason}")
            return
        self._heard_hello(signer, hello, now)

    def _known_credential(self, signer: bytes, digest: bytes) -> authority.MemberCredential | None:
        """The credential `signer` names by `digest`: its leaf's in our group's tree, or one
        verified from a full HELLO of `signer`; None if unknown. A digest stands only for a
        credential verified for its signer (the signer's key is hashed into it)."""
        leaf = self._leaf_of(signer)
        if leaf is not None:
            data = leaf.credential.identity
            if credential_book.digest(signer, data) == digest:
                return self._creds.check(data, signer)
        return self._book.lookup(signer, digest)

    def _leaf_of(self, key: bytes) -> Member | None:
        """The leaf of node key `key` in our group's current tree, if any."""
        if self.group is None:
            return None
        self._roster(self.group)
        return self._roster_by_key.get(key)

    def _unresolvable(self, signer: bytes, hello: m.Hello, now: float) -> None:
        """A HELLO naming a credential we do not hold: not heard (it may be another's digest,
        or a member's we will learn from a Welcome's tree, then it counts). Kept for that;
        if it shows another group, the committer's answer (a full HELLO) tells its members
        of ours, whose answer in turn tells us of theirs."""
        self.counters.drop("mvlan_hello_unresolved")
        self._unresolved[signer] = (now, hello)
        self._unresolved.move_to_end(signer)
        while len(self._unresolved) > MAX_UNRESOLVED:
            self._unresolved.popitem(last=False)
        if hello.group != self.tag and self.group is not None:
            self._answer_due = True

    def _resolve_unresolved(self) -> None:
        """Our group's tree just changed (we entered it): HELLOs of its members heard by
        digest count now, as heard when they arrived."""
        for signer, (at, hello) in list(self._unresolved.items()):
            try:
                cred = self._known_credential(signer, hello.digest)
                if cred is None:
                    continue
                self._creds.valid(cred, signer)
            except authority.CredentialError:
                continue
            del self._unresolved[signer]
            heard = self._heard.get(signer)
            if heard is None or heard.at < at:
                self._heard_hello(signer, hello, at)

    def _heard_hello(self, signer: bytes, hello: m.Hello, now: float) -> None:
        """A HELLO whose credential is valid, heard at `now`."""
        known = self._heard.get(signer)
        self._heard[signer] = Heard(now, hello)
        if hello.group != m.NO_GROUP:
            self._groups[hello.group] = (now, hello.members)
        if hello.group == self.tag and self.group is not None:
            if len(self._views) >= MAX_VIEWS:
                self._views.clear()
            self._views[(hello.epoch, hello.mls_id)] = now
        if hello.group != self.tag:
            # A joiner asking for the group, or a member of another group: answer (if we
            # are the committer) or act on it (a joiner offers its KeyPackage) now.
            self._answer_due = True
            if known is None or known.hello.group != hello.group:
                self._wake.set()

    def _revoked_now(self) -> None:
        """A newer revocation list: revoked members are no longer heard (nor committers)."""
        for key in self.revocations.revoked if self.revocations is not None else ():
            self._heard.pop(key, None)
            self._offers.pop(key, None)
        self._wake.set()

    def _on_offer(self, signer: bytes, offer: m.KeyPackageOffer) -> None:
        if self.group is None or offer.target != self.tag:
            return  # for a group we are not in: not ours to decode
        kp = hs.key_package(offer.message)
        if kp.leaf_node.signature_key != signer:
            self.counters.drop("mvlan_rejected_signer")
            return
        if not self._creds.leaf_ok(kp.leaf_node.credential, signer):
            return
        if kp.init_key not in self._consumed:
            if signer not in self._offers:
                self._wake.set()
            self._offers[signer] = (kp, self._clock())

    def _current(self, msg: m.EpochMessage) -> Group | None:
        """Our group if `msg` belongs to its current epoch; else None, counting what the
        message is: of another group (e.g. one losing a merge) or another epoch of ours."""
        group = self.group
        if group is None:
            return None
        if msg.group != self.tag:
            self.counters.drop("mvlan_other_group")
            return None
        if msg.epoch != group.epoch:
            self.counters.drop("mvlan_other_epoch")
            return None
        return group

    def _on_proposal(self, msg: m.EpochMessage) -> None:
        """An Update proposal of a member: every member keeps it for the committer's commit."""
        group = self._current(msg)
        if group is None:
            return
        mls, proposal = hs.proposal(msg.message)
        update = proposal.body
        if not isinstance(update, Update):
            self.counters.drop("mvlan_proposal_kind")
            return
        if not self._creds.leaf_ok(update.leaf_node.credential, update.leaf_node.signature_key):
            return
        try:
            group.process(mls)
        except SignatureError:
            # Same group and epoch number, other keys: a branch of a fork (lifecycle rule 2).
            self.counters.drop("mvlan_other_branch")
            return
        except MLSError as err:
            log.info("vlan %s: proposal rejected: %s", self.vlan_id.hex(), err)
            self.counters.drop("mvlan_proposal_rejected")
            return
        self._updates_epoch = group.epoch
        self._wake.set()
        early = self._early_commit
        if early is not None and early.epoch == group.epoch:
            self._early_commit = None
            self._on_commit(early)

    def _on_mac_probe(self, msg: m.EpochMessage) -> None:
        """A member's MAC claim or answer, MLS-encrypted for the current epoch."""
        probe = self.mac_probe
        group = self._current(msg)
        if probe is None or group is None:
            return
        try:
            processed = group.process(MLSMessage.decode(msg.message))
        except (SignatureError, DecryptError):
            self.counters.drop("mvlan_other_branch")
            return
        data = processed.application_data
        if data is None:
            raise m.MalformedControl("MACPROBE without application data")
        bind_claim(self.keys, group, processed, self.counters)
        if probe.receive(data):
            self._wake.set()

    async def _send_mac_probes(self, now: float, group: Group) -> None:
        if self.mac_probe is None:
            return
        interval = self.settings.hello_interval_for(len(self._roster(group)))
        for data in self.mac_probe.outgoing(now=now, interval=interval):
            sealed = group.protect(data).encode()
            await self._send(m.MACPROBE, m.EpochMessage(self.tag, group.epoch, sealed).encode())

    def _own_encryption_key(self, group: Group) -> bytes:
        own = group.own_leaf_index
        return next(x.encryption_key for x in self._roster(group) if x.index == own)

    def _on_commit(self, msg: m.EpochMessage) -> None:
        if self.group is None:
            if msg.group == self._target and self._bundle is not None:
                # The group we wait for moved on without us (its WELCOME, if we were in
                # it, came right after): offer again now, the committer may have changed.
                self._reoffer = True
                self._wake.set()
            return
        group = self._current(msg)
        if group is None:
            return
        mls, commit = hs.commit(msg.message)
        # One leaf with an invalid credential refuses the whole Commit.
        if not self._creds.leaves_ok(hs.new_leaves(commit)) or self._creds.revoked_sender(
            group, mls
        ):
            return
        own_key = self._own_encryption_key(group)
        try:
            result = group.process(mls)
        except SignatureError:
            self.counters.drop("mvlan_other_branch")
            return
        except MLSError as err:
            # Most likely it references an Update proposal still on its way.
            log.info("vlan %s: commit rejected: %s", self.vlan_id.hex(), err)
            self.counters.drop("mvlan_commit_rejected")
            self._early_commit = msg
            return
        if result.removed or not group.active:
            log.info("vlan %s: removed from the group at epoch %d", self.vlan_id.hex(), msg.epoch)
            self._leave()
            return
        self._added(hs.added(commit))
        if self._own_encryption_key(group) != own_key:
            self._self_update.refreshed(self._clock())
            self.counters.inc("mvlan_self_updates")
        self._new_epoch()

    def _added(self, added: list[KeyPackage]) -> None:
        """KeyPackages just committed: never offer them again; their members start fresh."""
        now = self._clock()
        if len(self._consumed) > MAX_CONSUMED:
            self._consumed.clear()
        for kp in added:
            key = kp.leaf_node.signature_key
            self._consumed.add(kp.init_key)
            self._since[key] = now
            offer = self._offers.get(key)
            if offer is not None and offer[0].init_key == kp.init_key:
                del self._offers[key]

    def _on_welcome(self, msg: m.EpochMessage) -> None:
        bundle = self._bundle
        if self.group is not None or bundle is None:
            return
        try:
            group = Group.join_from_welcome(msg.message, bundle)
        except MLSError:
            return  # for another joiner
        if m.group_tag(group.group_id) != msg.group:
            self.counters.drop("mvlan_welcome_tag")
            return
        if not self._creds.leaves_ok(self._roster(group)):
            log.warning(
                "vlan %s: refused a Welcome into a group with invalid members", self.vlan_id.hex()
            )
            return
        log.info("vlan %s: joined at epoch %d", self.vlan_id.hex(), group.epoch)
        self._enter(group)

    # ---- membership transitions ---------------------------------------------------------

    def _enter(self, group: Group) -> None:
        self._found_at = None
        self.group = group
        self.tag = m.group_tag(group.group_id)
        self._views.clear()
        self._bundle = None
        self._offers.clear()
        self._since.clear()
        self._behind_since = None
        self._self_update.refreshed(self._clock())
        self._new_epoch()
        self._last_hello = float("-inf")
        self._full_due = True
        if self.mac_probe is not None:
            self.mac_probe.restart()
        self._resolve_unresolved()
        self._wake.set()

    def _leave(self, *, keep_keys: bool = False) -> None:
        """Back to JOINING. Rejoining (`keep_keys`) sends with the current key until the
        Welcome installs the next, so the switch costs no traffic; removal forgets it."""
        self.group = None
        self.tag = m.NO_GROUP
        self._views.clear()
        self._bundle = None
        self._offers.clear()
        if not keep_keys:
            self.keys.leave()
            self._on_epoch()
        self._wake.set()

    def _new_epoch(self) -> None:
        group = self.group
        assert group is not None
        now = self._clock()
        self.keys.install(
            epoch=group.epoch,
            frame_key=frame_key_from_exporter(group.export_secret, self.vlan_id),
            own_leaf=group.own_leaf_index,
            members={x.index: x.signature_key for x in group.members()},
        )
        keys = {x.signature_key for x in self._roster(group)}
        for key in keys - self._since.keys():
            self._since[key] = now
        for key in self._since.keys() - keys:
            del self._since[key]
        self._epoch_since = now
        self._behind_since = None
        self._early_commit = None
        self._on_epoch()
        log.info(
            "vlan %s: epoch %d, %d members, mls-id %s",
            self.vlan_id.hex(),
            group.epoch,
            len(keys),
            self.keys.current().mls_id.hex(),
        )

    # ---- the task -------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                await self._tick()
            except (MLSError, ValueError):
                # One failed round (e.g. a commit too large for a CONTROL packet) is
                # logged and retried next tick; the VLAN keeps its current keys meanwhile.
                log.exception("vlan %s: group round failed", self.vlan_id.hex())
                self.counters.drop("mvlan_error")
            wait = TICK_S
            if self._found_at is not None:
                # Found exactly when due, not at the next tick: ticks of members started
                # together fall together, and so would their groups.
                wait = min(wait, max(0.0, self._found_at - self._clock()))
            with trio.move_on_after(wait):
                await self._wake.wait()
            self._wake = trio.Event()

    def _roster(self, group: Group) -> list[Member]:
        """The group's members in leaf order, computed once per epoch (ticks use them)."""
        key = (id(group), group.epoch)
        if self._roster_key != key:
            roster = sorted(group.members(), key=lambda x: x.index)
            own = next(x for x in roster if x.index == group.own_leaf_index)
            self._roster_key, self._roster_list, self._own = key, roster, own
            self._roster_by_key = {x.signature_key: x for x in roster}
        return self._roster_list

    @property
    def _own_member(self) -> Member:
        assert self.group is not None
        self._roster(self.group)
        assert self._own is not None
        return self._own

    def hello_now(self) -> None:
        """Send our HELLO, with our whole credential, at the next tick (a trunk just came
        up: tell whoever is behind it, who may not know us)."""
        self._last_hello = float("-inf")
        self._full_due = True
        self._wake.set()

    def _members(self) -> int:
        return 0 if self.group is None else len(self._roster(self.group))

    def _timeout(self) -> float:
        """How long a member of our group stays live without a HELLO (grows with the group)."""
        return self.settings.member_timeout_for(self._members())

    async def _tick(self) -> None:
        now = self._clock()
        self.keys.expire()
        if self._connected():
            if self._connected_since is None:
                self._connected_since = now
        else:
            self._connected_since = None
        if self.revocations is not None:
            if self.revocations.poll(now):
                self._revoked_now()
            if (revocation := self.revocations.outgoing(now)) is not None:
                await self._send(m.REVOCATION, revocation)
        if now - self._last_hello >= self.settings.hello_interval_for(self._members()):
            self._last_hello = now
            self._renew_credential()
            await self._send(m.HELLO, self._hello().encode())
            self._answer_due = False
        elif self._answer_due:
            await self._answer(now)
        if self.group is None:
            self._welcomes.clear()
            await self._joining(now)
        else:
            await self._reflood_welcomes(now)
            await self._member(now, self.group)

    async def _answer(self, now: float) -> None:
        """Answer a joiner's HELLO (or another group's) with ours at once, instead of making
        it wait up to a HELLO interval: only the committer answers, at most every
        ANSWER_GAP_S, so a large group sends one answer, not one per member."""
        group = self.group
        if group is None:
            self._answer_due = False
            return
        if now - self._last_answer < lc.ANSWER_GAP_S:
            return
        self._answer_due = False
        if self._is_committer(now, group):
            self._last_answer = now
            self.counters.inc("mvlan_hello_answers")
            await self._send(m.HELLO, self._hello(full=True).encode())

    def _is_committer(self, now: float, group: Group) -> bool:
        """lc.committer for us, without building the live set: walk the leaves in order
        until the first live one (usually the first or second)."""
        timeout = self._timeout()
        for x in self._roster(group):
            if x.index == group.own_leaf_index:
                return True
            h = self._heard.get(x.signature_key)
            if h is not None and h.hello.group == self.tag and now - h.at < timeout:
                return False
        return False

    def _renew_credential(self) -> None:
        """Take a renewed credential (the operator rewrites the file) once it verifies."""
        fresh = self._reload()
        if fresh is None or fresh == self.credential:
            return
        try:
            self._creds.check(fresh, self.own_key)
        except authority.CredentialError as err:
            log.warning("vlan %s: ignoring the new credential: %s", self.vlan_id.hex(), err)
            return
        self.credential = fresh
        self._full_due = True
        self._bundle = None
        self._own_checked = float("-inf")

    def _hello(self, *, full: bool = False) -> m.Hello:
        """Our HELLO. It carries our whole credential while we have no group (a joiner's
        question must be understood by all), when `full` (an answer), from the committer
        (what relays cache for joiners), and once after we enter a group, a trunk comes up
        or our credential changes; otherwise the credential's digest (receivers know it
        from our leaf or from an earlier full HELLO)."""
        g = self.group
        if g is None:
            return m.Hello(m.NO_GROUP, 0, bytes(16), 0, self.credential)
        view = (self.tag, g.epoch, self.keys.current().mls_id, len(self._roster(g)))
        if full or self._full_due or self._is_committer(self._clock(), g):
            self._full_due = False
            return m.Hello(*view, self.credential)
        if self._own_digest[0] != self.credential:
            self._own_digest = (
                self.credential,
                credential_book.digest(self.own_key, self.credential),
            )
        return m.Hello(*view, b"", self._own_digest[1])

    def _heard_groups(self, now: float) -> list[lc.GroupView]:
        timeout = self.settings.member_timeout_for
        for tag in [t for t, (at, n) in self._groups.items() if now - at >= timeout(n)]:
            del self._groups[tag]
        return [lc.GroupView(tag, n) for tag, (_, n) in self._groups.items()]

    def _own_credential_ok(self, now: float) -> bool:
        """Whether our credential is valid now (checked at most once a second: validity
        changes only with the wall clock and the credential file)."""
        if now - self._own_checked < 1.0:
            return self._own_invalid is None
        self._own_checked = now
        try:
            self._creds.check(self.credential, self.own_key)
        except authority.CredentialError as err:
            if self._own_invalid is None:
                log.error("vlan %s: our own credential is not valid: %s", self.vlan_id.hex(), err)
            self._own_invalid = err.reason
            return False
        if self._own_invalid is not None:
            log.info("vlan %s: our credential is valid again", self.vlan_id.hex())
        self._own_invalid = None
        return True

    async def _joining(self, now: float) -> None:
        if not self._own_credential_ok(now):
            self._found_at = None
            return
        groups = self._heard_groups(now)
        best = lc.best_group(groups)
        connected_for = 0.0 if self._connected_since is None else now - self._connected_since
        join_wait = self.settings.join_wait_s + self._join_jitter
        self._found_at = (
            None if groups or self._connected_since is None else self._connected_since + join_wait
        )
        if lc.should_create(
            heard_groups=len(groups),
            connected_for=connected_for,
            join_wait=join_wait,
        ):
            self._found_at = None
            group = Group.create(
                SUITE,
                signature_private=self.node.seed,
                credential=Credential.basic(self.credential),
            )
            log.info("vlan %s: founded the group", self.vlan_id.hex())
            self.counters.inc("mvlan_groups_founded")
            self._enter(group)
            await self._send(m.HELLO, self._hello().encode())
            return
        if best is None:
            return
        if self._bundle is None:
            self._bundle = make_key_package(
                SUITE,
                signature_private=self.node.seed,
                credential=Credential.basic(self.credential),
            )
        again = self._reoffer and now - self._last_offer >= lc.ANSWER_GAP_S
        interval = self.settings.hello_interval_for(best.members)
        if best.tag != self._target or again or now - self._last_offer >= interval:
            self._target, self._last_offer, self._reoffer = best.tag, now, False
            kp = MLSMessage(self._bundle.key_package).encode()
            await self._send(m.KEYPACKAGE, m.KeyPackageOffer(best.tag, kp).encode())

    async def _member(self, now: float, group: Group) -> None:
        mine = lc.GroupView(self.tag, len(self._roster(group)))
        move_to = lc.should_move(mine, self._heard_groups(now))
        if move_to is not None:
            log.info(
                "vlan %s: moving to the winning group %s", self.vlan_id.hex(), move_to.tag.hex()
            )
            self.counters.inc("mvlan_group_moves")
            self._leave(keep_keys=True)
            return
        if self._behind(now, group):
            log.info("vlan %s: out of sync at epoch %d, rejoining", self.vlan_id.hex(), group.epoch)
            self.counters.inc("mvlan_resyncs")
            self._leave(keep_keys=True)
            return
        await self._send_mac_probes(now, group)
        if self._own_member.credential.identity != self.credential:
            log.info("vlan %s: credential renewed, rejoining with it", self.vlan_id.hex())
            self._leave(keep_keys=True)
            return
        if self._behind_since is not None:
            return  # another branch of our group is ahead: we are about to rejoin it
        if not self._is_committer(now, group):
            if self._self_update.should_propose(now=now, epoch=group.epoch):
                await self._propose_update(group)
            return
        members = {x.index: x.signature_key for x in self._roster(group)}
        heard = {k: h.at for k, h in self._heard.items() if h.hello.group == self.tag}
        expired = [
            x.index
            for x in self._roster(group)
            if x.index != group.own_leaf_index
            and not self._creds.leaf_ok(x.credential, x.signature_key)
        ]
        plan = lc.plan_commit(
            own_leaf=group.own_leaf_index,
            members=members,
            heard=heard,
            since=self._since,
            offers={k: at for k, (_, at) in self._offers.items()},
            expired=expired,
            now=now,
            member_timeout=self._timeout(),
            epoch_since=self._epoch_since,
            rekey_interval=self.settings.rekey_interval_s,
            updates=self._updates_epoch == group.epoch,
            update_batch=self.settings.update_batch_s,
        )
        if not plan.empty:
            await self._commit(group, plan)

    def _behind(self, now: float, group: Group) -> bool:
        """True once another member has been ahead of us (or won a fork) for SYNC_GRACE_S:
        long enough for a COMMIT on its way to arrive, short enough to heal in one round."""
        mine = lc.EpochView(group.epoch, self.keys.current().mls_id)
        interval = self.settings.hello_interval_for(len(self._roster(group)))
        ahead = any(
            lc.out_of_sync(mine, lc.EpochView(epoch, mls_id))
            for (epoch, mls_id), at in self._views.items()
            if now - at < interval
        )
        if not ahead:
            self._behind_since = None
            return False
        if self._behind_since is None:
            self._behind_since = now
        return now - self._behind_since >= lc.SYNC_GRACE_S

    async def _propose_update(self, group: Group) -> None:
        """Propose a fresh key for our leaf; the committer commits it (by reference)."""
        epoch = group.epoch
        proposal = group.propose_update()
        self._self_update.proposed(epoch)
        self.counters.inc("mvlan_update_proposals")
        await self._send(m.PROPOSAL, m.EpochMessage(self.tag, epoch, proposal.encode()).encode())

    async def _commit(self, group: Group, plan: lc.CommitPlan) -> None:
        """Commit `plan`, atomically: the new epoch is installed only once the COMMIT and
        the WELCOME were accepted for sending; otherwise the group stays at its epoch and
        the joiners' offers stay for the next round."""
        adds = [self._offers[k][0] for k in plan.add]
        epoch = group.epoch
        try:
            result = group.commit(add=adds, remove=plan.remove, path=True, merge=False)
        except MLSError as err:
            log.warning("vlan %s: cannot commit %s: %s", self.vlan_id.hex(), plan, err)
            self.counters.drop("mvlan_commit_failed")
            self._offers.clear()
            return
        out: list[Outgoing] = [
            (m.COMMIT, m.EpochMessage(self.tag, epoch, result.commit_message.encode()).encode(), ())
        ]
        # The WELCOME goes toward its joiners only (DIRECTED), when they are few enough.
        joiners = tuple(kp.leaf_node.signature_key for kp in adds)
        if len(joiners) > m.MAX_DESTINATIONS:
            joiners = ()
        welcome = b""
        if result.welcome is not None:
            welcome = m.EpochMessage(self.tag, epoch + 1, result.welcome.encode()).encode()
            out.append((m.WELCOME, welcome, joiners))
        # Nothing may await between commit and merge: an incoming COMMIT would apply to the
        # group underneath the pending one (_send_all awaits nothing when it fails early).
        if not await self._send_all(out):
            group.discard_pending_commit()
            log.warning("vlan %s: commit not sent, staying at epoch %d", self.vlan_id.hex(), epoch)
            self.counters.drop("mvlan_commit_unsent")
            return
        group.merge_pending_commit()
        self._added(adds)
        if welcome and joiners:
            self._welcomes.append((self._clock(), welcome, joiners))
            del self._welcomes[:-MAX_WATCHED_WELCOMES]
        self._self_update.refreshed(self._clock())
        self.counters.inc("mvlan_commits")
        self._new_epoch()

    async def _reflood_welcomes(self, now: float) -> None:
        """A Welcome sent toward its joiners (DIRECTED) whose joiners are not all heard in
        the group WELCOME_REFLOOD_S later is sent again to everyone: a learned route that
        went stale may delay a join, never block it."""
        while self._welcomes and now - self._welcomes[0][0] >= WELCOME_REFLOOD_S:
            at, welcome, joiners = self._welcomes.pop(0)
            if any(not self._in_group_since(k, at) for k in joiners):
                self.counters.inc("mvlan_welcomes_reflooded")
                await self._send_all([(m.WELCOME, welcome, ())])

    def _in_group_since(self, key: bytes, at: float) -> bool:
        """Whether `key` said HELLO as a member of our group since `at`."""
        h = self._heard.get(key)
        return h is not None and h.at >= at and h.hello.group == self.tag

    async def _send(self, kind: int, body: bytes) -> bool:
        return await self._send_all([(kind, body, ())])

    async def _send_all(self, messages: Sequence[Outgoing]) -> bool:
        """Send messages in order, all or none, split into PARTs where one packet is too
        small, each to everyone or (DIRECTED) toward the node keys given; True once
        accepted for sending."""
        try:
            packets = [p for kind, body, to in messages for p in _packets(kind, body, to)]
        except chunks.MessageTooLarge as err:
            log.warning("vlan %s: %s", self.vlan_id.hex(), err)
            self.counters.drop("control_too_large")
            return False
        return await self._emit(self.vlan_id, packets)

    # ---- status ---------------------------------------------------------------------------

    def view(self) -> tuple[bytes, int, bytes, int] | None:
        """(group tag, epoch, MLS-ID, members) of our group, or None while joining."""
        g = self.group
        if g is None:
            return None
        return self.tag, g.epoch, self.keys.current().mls_id, len(self._roster(g))

    def has_member(self, key: bytes) -> bool:
        """Whether a leaf of our group belongs to the node key `key`."""
        g = self.group
        return g is not None and any(x.signature_key == key for x in self._roster(g))

    def status(self) -> dict[str, Any]:
        g = self.group
        if g is None:
            if self._own_invalid is not None:
                return {
                    "mls_state": "credential_invalid",
                    "credential_error": self._own_invalid,
                    "members": 0,
                    "committer": False,
                }
            return {"mls_state": "joining", "members": 0, "committer": False}
        return {
            "mls_state": "member",
            "members": len(self._roster(g)),
            "committer": self._is_committer(self._clock(), g),
            "group": self.tag.hex(),
        }
