"""One private VLAN (security "mls"): this node's MLS group member, driven over the MVLAN.

The node starts one PrivateVlan per mls VLAN and hands it every verified
CONTROL packet for that VLAN (`on_control`); `run` is its task. It joins or
founds the group, commits as the committer, and installs each epoch's frame
key into the VLAN port's MlsKeyProvider. Rules: mvlan_lifecycle.py; formats:
mvlan_messages.py; the protocol: docs/protocol.md, "Private VLAN group lifecycle".

Credentials (mvlan_credentials.py) are checked on every HELLO, every KeyPackage,
every Update proposal, every leaf a commit brings in, every leaf of a tree we are
welcomed into, and again by the committer each round (members whose credential
expired are removed). Members other than the committer propose an Update of their
leaf about every rekey interval; every member probes its MAC inside the group
(mvlan_macprobe.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from .. import wire
from ..counters import Counters
from ..crypto.mls_keys import MlsKeyProvider, frame_key_from_exporter
from ..identity import Identity
from ..mls import Group, KeyPackageBundle, MLSError, make_key_package
from ..mls.structs import Credential, KeyPackage, MLSMessage, Update
from . import authority
from . import handshake as hs
from . import lifecycle as lc
from . import messages as m
from .credentials import CredentialCheck
from .lifecycle import PrivateSettings
from .macprobe import MacClaim, MacProber, bind_claim
from .revocation import RevocationBook

log = logging.getLogger("peertap.private")

# MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519: its signature key is the node key.
SUITE = 1
TICK_S = 0.25
# Init keys of KeyPackages already added (a joiner republishes the same one until welcomed).
MAX_CONSUMED = 4096

Emit = Callable[[bytes, int, bytes], Awaitable[None]]


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
        self._join_jitter = random.uniform(0, settings.hello_interval_s)
        self._last_hello = float("-inf")
        self._last_offer = float("-inf")
        self._heard: dict[bytes, Heard] = {}
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
            revoked=lambda key: revocations is not None and revocations.is_revoked(key),
        )
        self._wake = trio.Event()
        try:
            self._creds.check(credential, self.own_key)
        except authority.CredentialError as err:
            log.error("vlan %s: our own credential is not valid: %s", vlan_id.hex(), err)

    # ---- receiving ----------------------------------------------------------------------

    def on_control(self, msg: wire.Control) -> None:
        """Handle one verified CONTROL packet for this VLAN (never raises on bad input)."""
        if msg.signer == self.own_key:
            return
        try:
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
        try:
            self._creds.check(hello.credential, signer)
        except authority.CredentialError as err:
            self.counters.drop(f"mvlan_rejected_{err.reason}")
            return
        self._heard[signer] = Heard(self._clock(), hello)

    def _revoked_now(self) -> None:
        """A newer revocation list: revoked members are no longer heard (nor committers)."""
        for key in self.revocations.revoked if self.revocations is not None else ():
            self._heard.pop(key, None)
            self._offers.pop(key, None)
        self._wake.set()

    def _on_offer(self, signer: bytes, offer: m.KeyPackageOffer) -> None:
        kp = hs.key_package(offer.message)
        if kp.leaf_node.signature_key != signer:
            self.counters.drop("mvlan_rejected_signer")
            return
        if not self._creds.leaf_ok(kp.leaf_node.credential, signer):
            return
        if (
            self.group is not None
            and offer.target == self.tag
            and kp.init_key not in self._consumed
        ):
            if signer not in self._offers:
                self._wake.set()
            self._offers[signer] = (kp, self._clock())

    def _on_proposal(self, msg: m.EpochMessage) -> None:
        """An Update proposal of a member: every member keeps it for the committer's commit."""
        group = self.group
        if group is None or msg.group != self.tag or msg.epoch != group.epoch:
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
        group, probe = self.group, self.mac_probe
        if probe is None or group is None or msg.group != self.tag or msg.epoch != group.epoch:
            return
        processed = group.process(MLSMessage.decode(msg.message))
        data = processed.application_data
        if data is None:
            raise m.MalformedControl("MACPROBE without application data")
        bind_claim(self.keys, group, processed, self.counters)
        if probe.receive(data):
            self._wake.set()

    async def _send_mac_probes(self, now: float, group: Group) -> None:
        if self.mac_probe is None:
            return
        for data in self.mac_probe.outgoing(now=now, interval=self.settings.hello_interval_s):
            sealed = group.protect(data).encode()
            await self._send(m.MACPROBE, m.EpochMessage(self.tag, group.epoch, sealed).encode())

    def _own_encryption_key(self, group: Group) -> bytes:
        return next(x.encryption_key for x in group.members() if x.index == group.own_leaf_index)

    def _on_commit(self, msg: m.EpochMessage) -> None:
        group = self.group
        if group is None or msg.group != self.tag or msg.epoch != group.epoch:
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
        if not self._creds.leaves_ok(group.members()):
            log.warning(
                "vlan %s: refused a Welcome into a group with invalid members", self.vlan_id.hex()
            )
            return
        log.info("vlan %s: joined at epoch %d", self.vlan_id.hex(), group.epoch)
        self._enter(group)

    # ---- membership transitions ---------------------------------------------------------

    def _enter(self, group: Group) -> None:
        self.group = group
        self.tag = m.group_tag(group.group_id)
        self._bundle = None
        self._offers.clear()
        self._since.clear()
        self._behind_since = None
        self._self_update.refreshed(self._clock())
        self._new_epoch()
        self._last_hello = float("-inf")
        if self.mac_probe is not None:
            self.mac_probe.restart()
        self._wake.set()

    def _leave(self, *, keep_keys: bool = False) -> None:
        """Back to JOINING. Rejoining (`keep_keys`) sends with the current key until the
        Welcome installs the next, so the switch costs no traffic; removal forgets it."""
        self.group = None
        self.tag = m.NO_GROUP
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
        keys = {x.signature_key for x in group.members()}
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
            with trio.move_on_after(TICK_S):
                await self._wake.wait()
            self._wake = trio.Event()

    def _live_heard(self, now: float) -> list[Heard]:
        timeout = self.settings.member_timeout_s
        return [h for h in self._heard.values() if now - h.at < timeout]

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
        if now - self._last_hello >= self.settings.hello_interval_s:
            self._last_hello = now
            self._renew_credential()
            await self._send(m.HELLO, self._hello().encode())
        if self.group is None:
            await self._joining(now)
        else:
            await self._member(now, self.group)

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
        self._bundle = None

    def _hello(self) -> m.Hello:
        g = self.group
        if g is None:
            return m.Hello(m.NO_GROUP, 0, bytes(16), 0, self.credential)
        return m.Hello(
            self.tag, g.epoch, self.keys.current().mls_id, len(g.members()), self.credential
        )

    def _heard_groups(self, now: float) -> list[lc.GroupView]:
        return [
            lc.GroupView(h.hello.group, h.hello.members)
            for h in self._live_heard(now)
            if h.hello.group != m.NO_GROUP
        ]

    async def _joining(self, now: float) -> None:
        groups = self._heard_groups(now)
        best = lc.best_group(groups)
        connected_for = 0.0 if self._connected_since is None else now - self._connected_since
        if lc.should_create(
            heard_groups=len(groups),
            connected_for=connected_for,
            join_wait=self.settings.join_wait_s + self._join_jitter,
        ):
            group = Group.create(
                SUITE,
                signature_private=self.node.seed,
                credential=Credential.basic(self.credential),
            )
            log.info("vlan %s: founded the group", self.vlan_id.hex())
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
        if best.tag != self._target or now - self._last_offer >= self.settings.hello_interval_s:
            self._target, self._last_offer = best.tag, now
            kp = MLSMessage(self._bundle.key_package).encode()
            await self._send(m.KEYPACKAGE, m.KeyPackageOffer(best.tag, kp).encode())

    async def _member(self, now: float, group: Group) -> None:
        mine = lc.GroupView(self.tag, len(group.members()))
        move_to = lc.should_move(mine, self._heard_groups(now))
        if move_to is not None:
            log.info(
                "vlan %s: moving to the winning group %s", self.vlan_id.hex(), move_to.tag.hex()
            )
            self._leave(keep_keys=True)
            return
        if self._behind(now, group):
            log.info("vlan %s: out of sync at epoch %d, rejoining", self.vlan_id.hex(), group.epoch)
            self._leave(keep_keys=True)
            return
        await self._send_mac_probes(now, group)
        own = next(x for x in group.members() if x.index == group.own_leaf_index)
        if own.credential.identity != self.credential:
            log.info("vlan %s: credential renewed, rejoining with it", self.vlan_id.hex())
            self._leave(keep_keys=True)
            return
        members = {x.index: x.signature_key for x in group.members()}
        heard = {k: h.at for k, h in self._heard.items() if h.hello.group == self.tag}
        live = lc.live_keys(
            heard, now=now, member_timeout=self.settings.member_timeout_s, own=self.own_key
        )
        if lc.committer(members, live) != group.own_leaf_index:
            if self._self_update.should_propose(now=now, epoch=group.epoch):
                await self._propose_update(group)
            return
        expired = [
            x.index
            for x in group.members()
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
            member_timeout=self.settings.member_timeout_s,
            epoch_since=self._epoch_since,
            rekey_interval=self.settings.rekey_interval_s,
            updates=self._updates_epoch == group.epoch,
            update_batch=self.settings.update_batch_s,
        )
        if not plan.empty:
            await self._commit(group, plan)

    def _behind(self, now: float, group: Group) -> bool:
        """True once another member has been ahead of us for a whole HELLO interval."""
        mine = lc.EpochView(group.epoch, self.keys.current().mls_id)
        ahead = any(
            lc.out_of_sync(mine, lc.EpochView(h.hello.epoch, h.hello.mls_id))
            for h in self._live_heard(now)
            if h.hello.group == self.tag and now - h.at < self.settings.hello_interval_s
        )
        if not ahead:
            self._behind_since = None
            return False
        if self._behind_since is None:
            self._behind_since = now
        return now - self._behind_since >= 1.5 * self.settings.hello_interval_s

    async def _propose_update(self, group: Group) -> None:
        """Propose a fresh key for our leaf; the committer commits it (by reference)."""
        epoch = group.epoch
        proposal = group.propose_update()
        self._self_update.proposed(epoch)
        self.counters.inc("mvlan_update_proposals")
        await self._send(m.PROPOSAL, m.EpochMessage(self.tag, epoch, proposal.encode()).encode())

    async def _commit(self, group: Group, plan: lc.CommitPlan) -> None:
        adds = [self._offers[k][0] for k in plan.add]
        epoch = group.epoch
        try:
            result = group.commit(add=adds, remove=plan.remove, path=True)
        except MLSError as err:
            log.warning("vlan %s: cannot commit %s: %s", self.vlan_id.hex(), plan, err)
            self.counters.drop("mvlan_commit_failed")
            self._offers.clear()
            return
        self._added(adds)
        self._self_update.refreshed(self._clock())
        self.counters.inc("mvlan_commits")
        await self._send(
            m.COMMIT, m.EpochMessage(self.tag, epoch, result.commit_message.encode()).encode()
        )
        if result.welcome is not None:
            await self._send(
                m.WELCOME, m.EpochMessage(self.tag, group.epoch, result.welcome.encode()).encode()
            )
        self._new_epoch()

    async def _send(self, kind: int, body: bytes) -> None:
        await self._emit(self.vlan_id, kind, body)

    # ---- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        g = self.group
        if g is None:
            return {"mls_state": "joining", "members": 0, "committer": False}
        now = self._clock()
        heard = {k: h.at for k, h in self._heard.items() if h.hello.group == self.tag}
        live = lc.live_keys(
            heard, now=now, member_timeout=self.settings.member_timeout_s, own=self.own_key
        )
        members = {x.index: x.signature_key for x in g.members()}
        return {
            "mls_state": "member",
            "members": len(members),
            "committer": lc.committer(members, live) == g.own_leaf_index,
            "group": self.tag.hex(),
        }
