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
    terminating: bool = False

    @property
    def member_key(self) -> str:
        return self.annotations.get(MEMBER_ANNOTATION) or self.name


@dataclass(frozen=True)
class StoredVlan:
    """What the VLAN's ConfigMap remembers: the last valid spec and the allocations."""

    spec: models.CryptoVLANSpec | None
    allocations: Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class VlanView:
    name: str
    generation: int
    raw_spec: Mapping[str, Any]
    annotations: Mapping[str, str]
    status: models.CryptoVLANStatus
    authority: identity.Identity
    stored: StoredVlan
    relay_addresses: Sequence[str] = ()
    deleting: bool = False


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
    members: list[PodView] = field(default_factory=list)
    allocations: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[specs.Problem] = field(default_factory=list)
    fallback: bool = False


def _effective(view: VlanView) -> tuple[models.CryptoVLANSpec | None, list[specs.Problem]]:
    """The spec in force: the current one when valid, else the last valid one (if any)."""
    recorded = view.annotations.get(specs.LABEL_ANNOTATION)
    spec, problems = specs.check_cryptovlan(
        name=view.name, raw=view.raw_spec, recorded_label=recorded
    )
    if spec is not None and not problems:
        return spec, []
    return view.stored.spec, problems


def _part(view: VlanView, spec: models.CryptoVLANSpec, label: str) -> render.VlanPart:
    return render.VlanPart(
        vlan_name=view.name,
        label=label,
        creator_hex=view.authority.public_hex,
        interface=render.interface_name(label, spec),
        mtu=spec.interface.mtu,
        transports=tuple(spec.transports),
        bootstrap=tuple(spec.bootstrap_peers) + tuple(view.relay_addresses),
        relay=spec.relay_policy.enabled,
        acl=spec.relay_policy.acl,
        security=spec.security,
        rekey_interval_s=render.duration_seconds(spec.rekey_interval),
        mode=spec.interface.mode,
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
        recorded_authority = view.annotations.get(specs.AUTHORITY_ANNOTATION)
        if recorded_authority and recorded_authority != view.authority.public_hex:
            unserved.append(
                (
                    view,
                    [
                        (
                            "AuthorityMismatch",
                            f"Secret {authority_secret_name(view.name)} holds the key "
                            f"{view.authority.public_hex[:16]}…, but this VLAN was created with "
                            f"{recorded_authority[:16]}… (the VLAN-ID derives from it); restore "
                            "the original key",
                        )
                    ],
                )
            )
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
        part = _part(view, spec, label)
        try:
            part.vlan_config(address=None, mac=None)
        except ValidationError as err:
            unserved.append((view, [*problems, ("RenderFailed", specs.explain(err))]))
            continue
        served[view.name] = _Served(
            view=view,
            spec=spec,
            part=part,
            vlan_id=ids.vlan_id_hex(view.authority.public_hex, label),
            subnet=subnet,
            problems=problems,
            fallback=bool(problems),
        )

    live_pods = [p for p in inputs.pods if not p.terminating]
    for pod in sorted(live_pods, key=lambda p: p.name):
        for s in served.values():
            if selectors.pod_joins(
                vlan_name=s.view.name, selector=s.spec.pod_selector, labels=pod.labels
            ):
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
    for s in served.values():
        keys = [p.member_key for p in s.members]
        previous = s.view.stored.allocations
        addresses: dict[str, str] = {}
        if s.subnet is not None:
            old = {k: v["address"] for k, v in previous.items() if v.get("address")}
            addresses = ipam.allocate(subnet=s.subnet, existing=old, wanted=keys, partial=True)
            waiting = sorted(k for k in keys if k not in addresses)
            if waiting:
                s.problems.append(
                    (
                        "SubnetExhausted",
                        f"subnet {s.subnet} has no free address for {len(waiting)} member(s): "
                        + ", ".join(waiting[:5]),
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
            cred_file = render.credential_file(s.view.name)
            current = inputs.members.get(key, MemberObjects()).credentials.get(cred_file)
            member_identity = f"{inputs.namespace}/{pod.name}"
            if credentials.needs_renewal(
                current,
                authority_hex=s.view.authority.public_hex,
                member_identity=member_identity,
                member_key_hex=node_keys[key].public_hex,
                vlan_id=s.vlan_id,
                now=inputs.now,
            ):
                current = credentials.issue(
                    authority_key=s.view.authority,
                    member_identity=member_identity,
                    member_key_hex=node_keys[key].public_hex,
                    vlan_id=s.vlan_id,
                    now=inputs.now,
                )
            assert current is not None
            member_creds[key][cred_file] = current
            member_creds[key].update(
                node_credentials.holdings(
                    inputs.members.get(key, MemberObjects()).credentials,
                    authorities={s.view.name: s.view.authority},
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


def _served_plan(
    s: _Served, now: dt.datetime, sidecars: Mapping[str, sidecar_status.Report] | None
) -> VlanPlan:
    group, own = _reported(s, sidecars)
    nothing = sidecar_status.VlanReport(vlan_id=s.vlan_id, epoch=0, mls_id="")
    members = [
        models.Member(
            pod=p.name,
            node=p.node,
            mac=s.allocations[p.member_key]["mac"],
            address=s.allocations[p.member_key]["address"],
            ready=p.ready,
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
        wanted.append(conditions.make("SpecValid", False, reason, message))
    else:
        wanted.append(conditions.make("SpecValid", True, "Valid", "spec is valid"))
    wanted.append(
        conditions.make("Ready", True, "Reconciled", f"{len(members)} members, {ready} ready")
    )
    status = s.view.status.model_copy(
        update={
            "vlan_id": s.vlan_id,
            "member_count": len(members),
            "members": members,
            "epoch": group.epoch,
            "mls_id": group.mls_id,
            "conditions": conditions.merge(s.view.status.conditions, wanted, now=now),
            "observed_generation": s.view.generation,
        }
    )
    configmap = {
        "vlan.json": s.part.to_json(),
        "spec.json": s.spec.model_dump_json(by_alias=True, exclude_none=True),
        "allocations.json": json.dumps(s.allocations, sort_keys=True, indent=2),
    }
    annotations = {
        specs.LABEL_ANNOTATION: s.part.label,
        specs.AUTHORITY_ANNOTATION: s.view.authority.public_hex,
    }
    return VlanPlan(name=s.view.name, status=status, annotations=annotations, configmap=configmap)


def _unserved_plan(view: VlanView, problems: list[specs.Problem], now: dt.datetime) -> VlanPlan:
    reason = problems[0][0] if problems else "InvalidSpec"
    message = "; ".join(m for _, m in problems)
    wanted = [
        conditions.make("SpecValid", False, reason, message),
        conditions.make("Ready", False, reason, "the VLAN is not served until its spec is valid"),
    ]
    status = view.status.model_copy(
        update={
            "member_count": 0,
            "members": [],
            "conditions": conditions.merge(view.status.conditions, wanted, now=now),
            "observed_generation": view.generation,
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
    return StoredVlan(spec=spec, allocations=allocations)
