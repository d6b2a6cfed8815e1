"""Decide a namespace's CryptoVLAN membership: pure function from gathered state to a plan.

The reconcile unit is a namespace: a pod's node.json covers all its VLANs, so
every VLAN of a namespace is decided together. Inputs are plain data read from
the API (`reconcile` gathers them); the output says what each object should
hold. The clock and the key generator are passed in.

Per VLAN a member holds a member credential (`credentials`) and a node credential
for trunk admission (`node_credentials`), both signed by the VLAN's authority; its
node.json admits peers vouched for by the authorities of its VLANs.

Member objects are named after the pod's member key: the `peertap.io/member`
annotation the admission webhook sets (known before the pod has a name), or
the pod name for pods created without the webhook.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from peertap.sidecar import identity, ids

from . import (
    conditions,
    credentials,
    ipam,
    models,
    node_credentials,
    render,
    revocations,
    selectors,
    sidecar_status,
    specs,
)

MEMBER_ANNOTATION = "peertap.io/member"


def member_object_name(key: str, suffix: str = "") -> str:
    """`peertap-m-<key>[-suffix]`, hashed down when the key is too long for an object name."""
    if len(key) > 200:
        key = key[:180].rstrip("-.") + "-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"peertap-m-{key}" + (f"-{suffix}" if suffix else "")


def vlan_configmap_name(vlan: str) -> str:
    return f"{vlan}-vlan"


def authority_secret_name(vlan: str) -> str:
    return f"{vlan}-authority"


@dataclass(frozen=True)
class PodView:
    name: str
    uid: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    node: str = ""
    ready: bool = False
    # The pod runs a PeerTap sidecar (pods created while the webhook was down, or matched by
    # podSelector after they started, have none: they are members that cannot be ready).
    sidecar: bool = True
    terminating: bool = False

    @property
    def member_key(self) -> str:
        return self.annotations.get(MEMBER_ANNOTATION) or self.name


@dataclass(frozen=True)
class StoredVlan:
    """What the VLAN's ConfigMap remembers: the last valid spec and the allocations."""

    spec: models.CryptoVLANSpec | None
    allocations: Mapping[str, Mapping[str, str]]
    revocations: revocations.Stored = field(default_factory=revocations.Stored)
    # The authority public key the VLAN was served with (vlan.json's creator).
    creator: str | None = None


@dataclass(frozen=True)
class VlanView:
    name: str
    generation: int
    raw_spec: Mapping[str, Any]
    annotations: Mapping[str, str]
    status: models.CryptoVLANStatus
    # The authority key read from the VLAN's Secret; None when the Secret is missing or holds
    # no usable key (`authority_problem` says which).
    authority: identity.Identity | None
    stored: StoredVlan
    relay_addresses: Sequence[str] = ()
    deleting: bool = False
    # From the referenced MVLAN: its presenceInterval in seconds (None: sidecar default),
    # and whether it exists at all (a dangling mvlanRef keeps the VLAN from Ready).
    presence_interval_s: float | None = None
    mvlan_missing: bool = False
    authority_problem: tuple[str, str] | None = None


@dataclass(frozen=True)
class MemberObjects:
    """What a member key already has: its node key and credential files (member and node
    credentials, by file name)."""

    node_key: identity.Identity | None = None
    credentials: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Inputs:
    namespace: str
    vlans: Sequence[VlanView]
    pods: Sequence[PodView]
    members: Mapping[str, MemberObjects]
    now: dt.datetime
    # Sidecar reports by pod uid from the last resync; None: none taken since the operator
    # started, so the reported fields keep their previous values.
    sidecars: Mapping[str, sidecar_status.Report] | None = None


@dataclass(frozen=True)
class VlanPlan:
    name: str
    status: models.CryptoVLANStatus
    annotations: Mapping[str, str]
    configmap: Mapping[str, str] | None


@dataclass(frozen=True)
class MemberPlan:
    key: str
    pod: PodView
    node_key: identity.Identity
    create_node_key: bool
    credentials: Mapping[str, str]
    config: str
    # Further files of the pod's ConfigMap (revocation lists), by file name.
    files: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    vlans: Sequence[VlanPlan]
    members: Sequence[MemberPlan]
    delete_members: Sequence[str]


@dataclass
class _Served:
    view: VlanView
    spec: models.CryptoVLANSpec
    part: render.VlanPart
    vlan_id: str
    subnet: ipam.Network | None
    authority_hex: str
    # None while the authority key is unusable: members keep what they hold, nothing is signed.
    signing: identity.Identity | None
    members: list[PodView] = field(default_factory=list)
    allocations: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[specs.Problem] = field(default_factory=list)
    fallback: bool = False
    authority_problem: specs.Problem | None = None
    # Pods that would join but hold no credential while nothing can be signed.
    held_back: list[str] = field(default_factory=list)
    revocation: revocations.Decision = field(
        default_factory=lambda: revocations.Decision(revocations.Stored(), ())
    )
    revoked_pods: list[str] = field(default_factory=list)


def authority_state(
    view: VlanView,
) -> tuple[str | None, identity.Identity | None, specs.Problem | None]:
    """The authority public key in force (hex; None: the VLAN cannot be served), the key to
    sign with (None: sign nothing), and the problem to report.

    The annotation `peertap.io/authority` records the key the VLAN-ID derives from. Once
    it is recorded the operator never changes it: when the Secret is gone, unreadable or
    holds another key, the VLAN keeps running on what members hold, and the problem says
    how to restore the key."""
    # The operator's own record (the VLAN ConfigMap) wins over the annotation, which a user
    # could edit while the webhook that keeps it immutable is down; the plan restores it.
    recorded = view.stored.creator or view.annotations.get(specs.AUTHORITY_ANNOTATION) or None
    secret = authority_secret_name(view.name)
    restore = (
        f"members keep running on the credentials they hold, but nothing is signed or renewed "
        f"and new pods cannot join; restore the original key: kubectl create secret generic "
        f"{secret} --from-file=authority.key=<backup> (docs/operations.md, Restoring a "
        f"VLAN authority)"
    )
    if view.authority is None:
        reason, what = view.authority_problem or (
            "AuthorityMissing",
            f"Secret {secret} is missing",
        )
        if recorded is None:
            return None, None, (reason, what)
        return recorded, None, (reason, f"{what}; {restore}")
    if recorded is not None and recorded != view.authority.public_hex:
        return (
            recorded,
            None,
            (
                "AuthorityMismatch",
                f"Secret {secret} holds the key {view.authority.public_hex[:16]}…, but this "
                f"VLAN was created with {recorded[:16]}… (the VLAN-ID derives from it); " + restore,
            ),
        )
    return view.authority.public_hex, view.authority, None


def _effective(view: VlanView) -> tuple[models.CryptoVLANSpec | None, list[specs.Problem]]:
    """The spec in force: the current one when valid, else the last valid one (if any)."""
    recorded = view.annotations.get(specs.LABEL_ANNOTATION)
    spec, problems = specs.check_cryptovlan(
        name=view.name, raw=view.raw_spec, recorded_label=recorded
    )
    if spec is not None and not problems:
        return spec, []
    return view.stored.spec, problems


def _part(
    view: VlanView, spec: models.CryptoVLANSpec, label: str, authority_hex: str
) -> render.VlanPart:
    return render.VlanPart(
        vlan_name=view.name,
        label=label,
        creator_hex=authority_hex,
        interface=render.interface_name(label, spec),
        mtu=spec.interface.mtu,
        transports=tuple(spec.transports),
        bootstrap=tuple(spec.bootstrap_peers) + tuple(view.relay_addresses),
        relay=spec.relay_policy.enabled,
        acl=spec.relay_policy.acl,
        security=spec.security,
        rekey_interval_s=render.duration_seconds(spec.rekey_interval),
        mode=spec.interface.mode,
        member_timeout_s=3 * view.presence_interval_s if view.presence_interval_s else None,
        revocations_file=revocations.file_name(view.name) if spec.security == "mls" else None,
    )


def _macs(
    served: _Served, keys: Mapping[str, identity.Identity], previous: Mapping[str, str]
) -> dict[str, str]:
    """One MAC per member, stable once recorded, re-rolled with a counter on collisions."""
    vid = bytes.fromhex(served.vlan_id)
    out: dict[str, str] = {}
    used: set[str] = set()
    for pod_key in sorted(keys):
        mac = previous.get(pod_key)
        nonce = 0
        public = keys[pod_key].public_bytes
        while mac is None or mac in used:
            # Nonce 0 is the sidecar's own default (16 zero bytes): the same MAC it would pick.
            mac = ids.mac_str(ids.member_mac(public, vid, nonce.to_bytes(16, "big")))
            nonce += 1
        used.add(mac)
        out[pod_key] = mac
    return out


def decide(inputs: Inputs, *, new_identity: Callable[[], identity.Identity]) -> Plan:
    served: dict[str, _Served] = {}
    vlan_plans: list[VlanPlan] = []
    unserved: list[tuple[VlanView, list[specs.Problem]]] = []
    for view in inputs.vlans:
        if view.deleting:
            continue
        authority_hex, signing, authority_problem = authority_state(view)
        if authority_hex is None:
            assert authority_problem is not None
            unserved.append((view, [authority_problem]))
            continue
        spec, problems = _effective(view)
        if spec is None:
            unserved.append((view, problems))
            continue
        label = view.annotations.get(specs.LABEL_ANNOTATION) or render.effective_label(
            view.name, spec
        )
        subnet = (
            ipam.parse_subnet(spec.interface.ipam.subnet) if spec.interface.ipam.subnet else None
        )
        part = _part(view, spec, label, authority_hex)
        try:
            part.vlan_config(address=None, mac=None)
        except ValidationError as err:
            unserved.append((view, [*problems, ("RenderFailed", specs.explain(err))]))
            continue
        served[view.name] = _Served(
            view=view,
            spec=spec,
            part=part,
            vlan_id=ids.vlan_id_hex(authority_hex, label),
            subnet=subnet,
            authority_hex=authority_hex,
            signing=signing,
            problems=problems,
            fallback=bool(problems),
            authority_problem=authority_problem,
        )

    # Node public keys of the namespace's pods, for revocations naming pods.
    pod_keys = {}
    for p in inputs.pods:
        known = inputs.members.get(p.member_key, MemberObjects()).node_key
        if known is not None:
            pod_keys[p.name] = known.public_hex
    for s in served.values():
        if s.spec.security == "mls":
            s.revocation = revocations.decide(
                entries=s.spec.revoked_members,
                pod_keys=pod_keys,
                previous=s.view.stored.revocations,
                authority=s.signing,
                label=s.part.label,
            )
    live_pods = [p for p in inputs.pods if not p.terminating]
    for pod in sorted(live_pods, key=lambda p: p.name):
        for s in served.values():
            if not selectors.pod_joins(
                vlan_name=s.view.name, selector=s.spec.pod_selector, labels=pod.labels
            ):
                continue
            revoked = s.revocation.stored.keys
            if pod.name in s.spec.revoked_members or pod_keys.get(pod.name) in revoked:
                # Not a member any more: no config, no credential renewal.
                s.revoked_pods.append(pod.name)
                continue
            held = inputs.members.get(pod.member_key, MemberObjects()).credentials
            if s.signing is None and render.credential_file(s.view.name) not in held:
                # Nothing can vouch for it until the authority key is back.
                s.held_back.append(pod.name)
                continue
            s.members.append(pod)

    # Node keys: reuse the stored one, generate only for members that have none.
    member_pods: dict[str, PodView] = {}
    for s in served.values():
        for pod in s.members:
            member_pods.setdefault(pod.member_key, pod)
    node_keys: dict[str, identity.Identity] = {}
    created: set[str] = set()
    for key in sorted(member_pods):
        existing = inputs.members.get(key, MemberObjects()).node_key
        if existing is None:
            existing = new_identity()
            created.add(key)
        node_keys[key] = existing

    member_vlans: dict[str, list[render.MemberVlan]] = {k: [] for k in member_pods}
    member_creds: dict[str, dict[str, str]] = {k: {} for k in member_pods}
    member_files: dict[str, dict[str, str]] = {k: {} for k in member_pods}
    for s in served.values():
        keys = [p.member_key for p in s.members]
        previous = s.view.stored.allocations
        addresses: dict[str, str] = {}
        if s.subnet is not None:
            old = {k: v["address"] for k, v in previous.items() if v.get("address")}
            addresses = ipam.allocate(subnet=s.subnet, existing=old, wanted=keys, partial=True)
            waiting = sorted(p.name for p in s.members if p.member_key not in addresses)
            if waiting:
                s.problems.append(
                    (
                        "SubnetExhausted",
                        f"subnet {s.subnet} has no free address for {len(waiting)} member "
                        "pod(s): " + ", ".join(waiting[:5]),
                    )
                )
        macs = _macs(
            s,
            {k: node_keys[k] for k in keys},
            {k: v["mac"] for k, v in previous.items() if v.get("mac")},
        )
        for pod in s.members:
            key = pod.member_key
            s.allocations[key] = {"address": addresses.get(key, ""), "mac": macs[key]}
            member_vlans[key].append(
                render.MemberVlan(part=s.part, address=addresses.get(key) or None, mac=macs[key])
            )
            if s.revocation.stored.text:
                member_files[key][revocations.file_name(s.view.name)] = s.revocation.stored.text
            cred_file = render.credential_file(s.view.name)
            held = inputs.members.get(key, MemberObjects()).credentials
            if s.signing is None:
                # Keep serving with what the member holds (the member credential is there:
                # pods without it were held back above).
                member_creds[key][cred_file] = held[cred_file]
                node_file = node_credentials.file_name(s.view.name)
                if node_file in held:
                    member_creds[key][node_file] = held[node_file]
                continue
            current = held.get(cred_file)
            member_identity = f"{inputs.namespace}/{pod.name}"
            if credentials.needs_renewal(
                current,
                authority_hex=s.authority_hex,
                member_identity=member_identity,
                member_key_hex=node_keys[key].public_hex,
                vlan_id=s.vlan_id,
                now=inputs.now,
            ):
                current = credentials.issue(
                    authority_key=s.signing,
                    member_identity=member_identity,
                    member_key_hex=node_keys[key].public_hex,
                    vlan_id=s.vlan_id,
                    now=inputs.now,
                )
            assert current is not None
            member_creds[key][cred_file] = current
            member_creds[key].update(
                node_credentials.holdings(
                    held,
                    authorities={s.view.name: s.signing},
                    node_key=node_keys[key].public_bytes,
                    node_identity=member_identity,
                    now=inputs.now,
                )
            )

    member_plans: list[MemberPlan] = []
    broken: dict[str, list[str]] = {}
    for key in sorted(member_pods):
        try:
            config = render.member_config(member_vlans[key])
        except ValidationError as err:
            for mv in member_vlans[key]:
                broken.setdefault(mv.part.vlan_name, []).append(
                    f"pod {member_pods[key].name}: {specs.explain(err)}"
                )
            continue
        member_plans.append(
            MemberPlan(
                key=key,
                pod=member_pods[key],
                node_key=node_keys[key],
                create_node_key=key in created,
                credentials=member_creds[key],
                config=config,
                files=member_files[key],
            )
        )

    for s in served.values():
        if s.view.name in broken:
            s.problems.append(("MemberConfigInvalid", "; ".join(broken[s.view.name])))
        vlan_plans.append(_served_plan(s, inputs.now, inputs.sidecars))
    for view, problems in unserved:
        vlan_plans.append(_unserved_plan(view, problems, inputs.now))

    planned = {m.key for m in member_plans}
    wanted_keys = set(member_pods)
    delete = sorted(k for k in inputs.members if k not in wanted_keys and k not in planned)
    return Plan(
        vlans=sorted(vlan_plans, key=lambda p: p.name),
        members=member_plans,
        delete_members=delete,
    )


def _reported(
    s: _Served, sidecars: Mapping[str, sidecar_status.Report] | None
) -> tuple[sidecar_status.VlanReport, dict[str, sidecar_status.VlanReport]]:
    """The VLAN's group state as most members report it, and each member's own report."""
    if sidecars is None:
        previous = {m.pod: m for m in s.view.status.members}
        own = {
            p.name: sidecar_status.VlanReport(
                vlan_id=s.vlan_id, epoch=previous[p.name].epoch, mls_id=previous[p.name].mls_id
            )
            for p in s.members
            if p.name in previous
        }
        group = sidecar_status.VlanReport(
            vlan_id=s.vlan_id, epoch=s.view.status.epoch, mls_id=s.view.status.mls_id
        )
        return group, own
    own = {}
    for p in s.members:
        report = sidecars.get(p.uid)
        vlan = report.vlans.get(s.vlan_id) if report is not None else None
        if vlan is not None:
            own[p.name] = vlan
    group = sidecar_status.vlan_consensus(own.values()) or sidecar_status.VlanReport(
        vlan_id=s.vlan_id, epoch=0, mls_id=""
    )
    return group, own


def _member_ready(
    pod: PodView, own: Mapping[str, sidecar_status.VlanReport], observed: bool
) -> bool:
    """A member is ready when its sidecar container is ready and, once the operator has asked
    the sidecars (`observed`), its sidecar reported this VLAN."""
    return pod.sidecar and pod.ready and (not observed or pod.name in own)


def _served_plan(
    s: _Served, now: dt.datetime, sidecars: Mapping[str, sidecar_status.Report] | None
) -> VlanPlan:
    group, own = _reported(s, sidecars)
    nothing = sidecar_status.VlanReport(vlan_id=s.vlan_id, epoch=0, mls_id="")
    gen = s.view.generation
    members = [
        models.Member(
            pod=p.name,
            node=p.node,
            mac=s.allocations[p.member_key]["mac"],
            address=s.allocations[p.member_key]["address"],
            ready=_member_ready(p, own, sidecars is not None),
            epoch=own.get(p.name, nothing).epoch,
            mls_id=own.get(p.name, nothing).mls_id,
        )
        for p in sorted(s.members, key=lambda p: p.name)
    ]
    ready = sum(1 for m in members if m.ready)
    wanted = []
    if s.problems:
        reason = s.problems[0][0]
        message = "; ".join(m for _, m in s.problems)
        if s.fallback:
            message += " (the last valid spec stays in force)"
        wanted.append(conditions.make("SpecValid", False, reason, message, generation=gen))
    else:
        wanted.append(conditions.make("SpecValid", True, "Valid", "spec is valid", generation=gen))
    summary = f"{len(members)} members, {ready} ready"
    not_ready = [m.pod for m in members if not m.ready]
    if not_ready:
        summary += "; not ready: " + ", ".join(not_ready[:10])
    if s.revoked_pods:
        summary += "; revoked: " + ", ".join(s.revoked_pods[:10])
    if s.revocation.unresolved:
        summary += "; spec.revokedMembers names no known pod: " + ", ".join(
            s.revocation.unresolved[:10]
        )
    no_sidecar = sorted(p.name for p in s.members if not p.sidecar)
    if s.authority_problem is not None:
        reason, message = s.authority_problem
        if s.held_back:
            message += "; waiting to join: " + ", ".join(s.held_back[:10])
        ready_cond = conditions.make("Ready", False, reason, message, generation=gen)
    elif s.problems:
        ready_cond = conditions.make(
            "Ready", False, s.problems[0][0], f"see SpecValid; {summary}", generation=gen
        )
    elif s.view.mvlan_missing:
        ref = s.spec.mvlan_ref.name if s.spec.mvlan_ref else ""
        ready_cond = conditions.make(
            "Ready",
            False,
            "MVLANNotFound",
            f"spec.mvlanRef names MVLAN {ref}, which does not exist in this namespace; {summary}",
            generation=gen,
        )
    elif no_sidecar:
        ready_cond = conditions.make(
            "Ready",
            False,
            "MembersWithoutSidecar",
            "member pods without a PeerTap sidecar (created while the admission webhook was "
            "unavailable, or matched after they started; delete them to have them recreated "
            "with one): " + ", ".join(no_sidecar[:10]) + f"; {summary}",
            generation=gen,
        )
    else:
        ready_cond = conditions.make("Ready", True, "Reconciled", summary, generation=gen)
    wanted.append(ready_cond)
    status = s.view.status.model_copy(
        update={
            "vlan_id": s.vlan_id,
            "member_count": len(members),
            "members": members,
            "epoch": group.epoch,
            "mls_id": group.mls_id,
            "conditions": conditions.merge(s.view.status.conditions, wanted, now=now),
            "observed_generation": gen,
        }
    )
    configmap = {
        "vlan.json": s.part.to_json(),
        "spec.json": s.spec.model_dump_json(by_alias=True, exclude_none=True),
        "allocations.json": json.dumps(s.allocations, sort_keys=True, indent=2),
        **revocations.to_data(s.revocation.stored),
    }
    annotations = {
        specs.LABEL_ANNOTATION: s.part.label,
        specs.AUTHORITY_ANNOTATION: s.authority_hex,
    }
    return VlanPlan(name=s.view.name, status=status, annotations=annotations, configmap=configmap)


def _unserved_plan(view: VlanView, problems: list[specs.Problem], now: dt.datetime) -> VlanPlan:
    reason = problems[0][0] if problems else "InvalidSpec"
    message = "; ".join(m for _, m in problems)
    gen = view.generation
    wanted = [
        conditions.make("SpecValid", False, reason, message, generation=gen),
        conditions.make(
            "Ready", False, reason, "the VLAN is not served until this is fixed", generation=gen
        ),
    ]
    status = view.status.model_copy(
        update={
            "member_count": 0,
            "members": [],
            "conditions": conditions.merge(view.status.conditions, wanted, now=now),
            "observed_generation": gen,
        }
    )
    return VlanPlan(name=view.name, status=status, annotations={}, configmap=None)


def parse_stored(data: Mapping[str, str] | None) -> StoredVlan:
    """Read a VLAN ConfigMap's data; unreadable parts count as absent."""
    if not data:
        return StoredVlan(spec=None, allocations={})
    spec: models.CryptoVLANSpec | None = None
    try:
        spec = models.CryptoVLANSpec.model_validate_json(data.get("spec.json", ""))
    except ValidationError:
        spec = None
    allocations: dict[str, dict[str, str]] = {}
    try:
        raw = json.loads(data.get("allocations.json", "{}"))
        if isinstance(raw, dict):
            for k, v in raw.items():
                if isinstance(v, dict):
                    allocations[str(k)] = {str(a): str(b) for a, b in v.items()}
    except json.JSONDecodeError:
        allocations = {}
    creator: str | None = None
    try:
        shared = json.loads(data.get("vlan.json", "{}"))
        found = shared.get("vlan", {}).get("creator") if isinstance(shared, dict) else None
        if isinstance(found, str) and re.fullmatch(r"[0-9a-f]{64}", found):
            creator = found
    except (json.JSONDecodeError, AttributeError):
        creator = None
    return StoredVlan(
        spec=spec,
        allocations=allocations,
        revocations=revocations.parse(data),
        creator=creator,
    )
