"""Reconcile the CryptoVLANs of one namespace: gather from the API -> membership.decide -> apply.

Runs for a namespace are serialised by a per-namespace lock, so two events
never allocate addresses or create keys concurrently. Writes happen only when
an object differs from the plan, so a quiet namespace produces no events.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import ValidationError

from peertap.sidecar import identity

from . import (
    admission,
    events,
    kube,
    membership,
    metrics,
    models,
    objects,
    render,
    revocations,
    selectors,
    sidecar_status,
    specs,
)

log = logging.getLogger(__name__)

JsonObj = dict[str, Any]
Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_status(raw: Mapping[str, Any] | None) -> models.CryptoVLANStatus:
    """The operator's part of status (kopf keeps its own keys there too)."""
    known = {f.alias or n for n, f in models.CryptoVLANStatus.model_fields.items()}
    try:
        return models.CryptoVLANStatus.model_validate(
            {k: v for k, v in (raw or {}).items() if k in known}
        )
    except ValidationError:
        return models.CryptoVLANStatus()


has_sidecar = admission.has_sidecar


def pod_view(pod: Mapping[str, Any]) -> membership.PodView:
    meta = pod.get("metadata", {})
    ready = admission.sidecar_ready(pod)
    return membership.PodView(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        node=str((pod.get("spec") or {}).get("nodeName") or ""),
        ready=ready,
        sidecar=admission.has_sidecar(pod),
        terminating=bool(meta.get("deletionTimestamp")),
    )


class Reconciler:
    def __init__(
        self,
        api: kube.KubeApi,
        *,
        clock: Clock = utcnow,
        new_identity: Callable[[], identity.Identity] = identity.generate,
        observe_gap: float = 30.0,
    ) -> None:
        self.api = api
        self.clock = clock
        self.new_identity = new_identity
        # Every CryptoVLAN's resync asks for sidecar reports, but they cover the whole
        # namespace: one round per observe_gap seconds is enough.
        self.observe_gap = observe_gap
        self._locks: dict[str, asyncio.Lock] = {}
        self._queued: dict[str, bool] = {}
        self._sidecars: dict[str, dict[str, sidecar_status.Report]] = {}
        self._observed_at: dict[str, float] = {}
        # Called with the namespace after a run changed a VLAN's revocation list: the
        # MVLAN relays serving it carry the list too (handlers wire it to the relays).
        self.on_revocations_changed: Callable[[str], Awaitable[None]] | None = None
        self._revocations_changed: set[str] = set()

    def lock(self, namespace: str) -> asyncio.Lock:
        return self._locks.setdefault(namespace, asyncio.Lock())

    async def ensure_authority(
        self, cvlan: Mapping[str, Any], secrets: list[JsonObj]
    ) -> tuple[identity.Identity | None, tuple[str, str] | None]:
        """The VLAN's authority key and, when it is unusable, (reason, message).

        The Secret is created only for a VLAN that has no recorded authority yet (the
        annotation `peertap.io/authority`): a VLAN whose Secret went missing is never given
        a new key (its VLAN-ID derives from the old one), it runs on what members hold."""
        meta = cvlan["metadata"]
        name = membership.authority_secret_name(meta["name"])
        ns = meta["namespace"]
        found = next((s for s in secrets if objects.name_of(s) == name), None)
        if found is None:
            # Not labelled as ours (copied from another cluster) or really missing: ask.
            found = await self.api.get(kube.SECRETS.path(ns, name))
        recorded = objects.annotations_of(cvlan).get(specs.AUTHORITY_ANNOTATION)
        if found is None and recorded:
            return None, ("AuthorityMissing", f"Secret {name} is missing")
        if found is None:
            key = self.new_identity()
            body = objects.secret(
                meta=objects.metadata(
                    name=name,
                    namespace=ns,
                    component=objects.AUTHORITY,
                    owner=cvlan,
                    labels={objects.VLAN_LABEL: meta["name"]},
                ),
                data={"authority.key": identity.to_pem(key).decode()},
            )
            try:
                await self.api.create(kube.SECRETS.path(ns), body)
                log.info("created authority Secret %s/%s", ns, name)
                return key, None
            except kube.Conflict:
                found = await self.api.get(kube.SECRETS.path(ns, name))
                if found is None:
                    raise
        pem = objects.decode(found.get("data")).get("authority.key", "")
        try:
            return identity.from_pem(pem.encode(), source=f"Secret {ns}/{name}"), None
        except identity.IdentityError as err:
            return None, (
                "AuthorityUnreadable",
                f"Secret {name} holds no usable key ({err})",
            )

    async def reconcile_namespace(
        self, namespace: str, *, observe: bool = False
    ) -> membership.Plan | None:
        """Reconcile the namespace; None when a run already queued will cover this request.

        Event storms (a rollout's pod events) coalesce: while one run is in progress
        at most one more waits, and it reads the state after every event before it.
        With `observe` (the periodic resync) the member sidecars are first asked for their
        group state, unless that was done less than `observe_gap` seconds ago; every run
        reports the latest answers.
        """
        if observe:
            # Outside the lock: slow or silent sidecars never hold up event-driven runs.
            await self._observe(namespace)
        if self._queued.get(namespace):
            return None
        self._queued[namespace] = True
        async with self.lock(namespace):
            self._queued[namespace] = False
            try:
                plan = await self._run(namespace)
            except Exception as err:
                metrics.RECONCILES.labels("CryptoVLAN", "error").inc()
                metrics.ERRORS.labels("CryptoVLAN", type(err).__name__).inc()
                raise
            metrics.RECONCILES.labels("CryptoVLAN", "ok").inc()
        if namespace in self._revocations_changed and self.on_revocations_changed is not None:
            self._revocations_changed.discard(namespace)
            await self.on_revocations_changed(namespace)
        return plan

    async def _observe(self, ns: str) -> None:
        """Refresh the namespace's sidecar reports (by pod uid) when the last round is old."""
        now = time.monotonic()
        last = self._observed_at.get(ns)
        if last is not None and now - last < self.observe_gap:
            return
        self._observed_at[ns] = now
        targets = {}
        for pod in await self.api.list_objects(kube.PODS.path(ns)):
            ip = sidecar_status.pod_ip(pod)
            view = pod_view(pod)
            if ip and has_sidecar(pod) and view.labels.get(selectors.ROLE_LABEL) != "relay":
                targets[view.uid] = ip
        self._sidecars[ns] = await sidecar_status.fetch_reports(targets)
        log.debug("%d of %d sidecars in %s reported", len(self._sidecars[ns]), len(targets), ns)

    async def _run(self, ns: str) -> membership.Plan:
        api = self.api
        cvlans = await api.list_objects(kube.CRYPTOVLANS.path(ns))
        pods = await api.list_objects(kube.PODS.path(ns))
        secrets = [
            s
            for s in await api.list_objects(kube.SECRETS.path(ns))
            if objects.labels_of(s).get(objects.MANAGED_BY) == objects.OPERATOR
        ]
        configmaps = [
            c
            for c in await api.list_objects(kube.CONFIGMAPS.path(ns))
            if objects.labels_of(c).get(objects.MANAGED_BY) == objects.OPERATOR
        ]
        mvlans = {objects.name_of(m): m for m in await api.list_objects(kube.MVLANS.path(ns))}

        views = []
        by_name = {}
        for cvlan in cvlans:
            meta = cvlan.get("metadata", {})
            name = meta["name"]
            by_name[name] = cvlan
            deleting = bool(meta.get("deletionTimestamp"))
            if deleting:
                views.append(self._deleting_view(cvlan))
                continue
            authority, authority_problem = await self.ensure_authority(cvlan, secrets)
            stored = next(
                (
                    c
                    for c in configmaps
                    if objects.name_of(c) == membership.vlan_configmap_name(name)
                ),
                None,
            )
            spec_raw = cvlan.get("spec") or {}
            relay_addresses: list[str] = []
            presence: float | None = None
            ref = (spec_raw.get("mvlanRef") or {}).get("name")
            if ref and ref in mvlans:
                relay_addresses = list(
                    (mvlans[ref].get("status") or {}).get("relayAddresses") or []
                )
                presence = _presence_seconds(mvlans[ref])
            views.append(
                membership.VlanView(
                    name=name,
                    generation=int(meta.get("generation") or 0),
                    raw_spec=spec_raw,
                    annotations=objects.annotations_of(cvlan),
                    status=parse_status(cvlan.get("status")),
                    authority=authority,
                    stored=membership.parse_stored(stored.get("data") if stored else None),
                    relay_addresses=relay_addresses,
                    presence_interval_s=presence,
                    authority_problem=authority_problem,
                    mvlan_missing=bool(ref) and ref not in mvlans,
                )
            )

        members = _member_objects(secrets, configmaps)
        inputs = membership.Inputs(
            namespace=ns,
            vlans=views,
            pods=[pod_view(p) for p in pods],
            members=members,
            now=self.clock(),
            sidecars=self._sidecars.get(ns),
        )
        plan = membership.decide(inputs, new_identity=self.new_identity)
        pods_by_name = {objects.name_of(p): p for p in pods}
        await self._apply(ns, plan, by_name, secrets, configmaps, pods_by_name)
        return plan

    def _deleting_view(self, cvlan: Mapping[str, Any]) -> membership.VlanView:
        meta = cvlan["metadata"]
        return membership.VlanView(
            name=meta["name"],
            generation=0,
            raw_spec={},
            annotations={},
            status=models.CryptoVLANStatus(),
            authority=identity.generate(),
            stored=membership.StoredVlan(spec=None, allocations={}),
            deleting=True,
        )

    async def _apply(
        self,
        ns: str,
        plan: membership.Plan,
        cvlans: Mapping[str, JsonObj],
        secrets: list[JsonObj],
        configmaps: list[JsonObj],
        pods: Mapping[str, JsonObj],
    ) -> None:
        secret_by_name = {objects.name_of(s): s for s in secrets}
        cm_by_name = {objects.name_of(c): c for c in configmaps}
        for vp in plan.vlans:
            cvlan = cvlans[vp.name]
            if vp.configmap is not None:
                have = (cm_by_name.get(membership.vlan_configmap_name(vp.name)) or {}).get("data")
                if (have or {}).get(revocations.LIST_FILE) != vp.configmap.get(
                    revocations.LIST_FILE
                ):
                    self._revocations_changed.add(ns)
                await self._ensure_configmap(
                    ns,
                    name=membership.vlan_configmap_name(vp.name),
                    data=vp.configmap,
                    component=objects.VLAN_CONFIG,
                    owner=cvlan,
                    existing=cm_by_name,
                    labels={objects.VLAN_LABEL: vp.name},
                )
            current = objects.annotations_of(cvlan)
            missing = {k: v for k, v in vp.annotations.items() if current.get(k) != v}
            if missing:
                await self.api.patch(
                    kube.CRYPTOVLANS.path(ns, vp.name), {"metadata": {"annotations": missing}}
                )

        for mp in plan.members:
            owner = pods.get(mp.pod.name)
            annotations = {objects.MEMBER_KEY: mp.key}
            key_name = membership.member_object_name(mp.key, "node")
            key_data = {render.KEY_FILE: identity.to_pem(mp.node_key).decode()}
            if mp.create_node_key and key_name in secret_by_name:
                # The stored key was unreadable: replace it rather than run keyless.
                await self.api.patch(
                    kube.SECRETS.path(ns, key_name), {"data": objects.encode(key_data)}
                )
            elif mp.create_node_key:
                body = objects.secret(
                    meta=objects.metadata(
                        name=key_name,
                        namespace=ns,
                        component=objects.MEMBER_NODE_KEY,
                        owner=owner,
                        annotations=annotations,
                    ),
                    data=key_data,
                )
                try:
                    await self.api.create(kube.SECRETS.path(ns), body)
                except kube.Conflict:
                    log.info("node key Secret %s/%s appeared concurrently", ns, key_name)
            await self._ensure_secret(
                ns,
                name=membership.member_object_name(mp.key, "cred"),
                data=mp.credentials,
                component=objects.MEMBER_CREDENTIALS,
                owner=owner,
                existing=secret_by_name,
                annotations=annotations,
            )
            await self._ensure_configmap(
                ns,
                name=membership.member_object_name(mp.key),
                data={render.CONFIG_FILE: mp.config, **mp.files},
                component=objects.MEMBER_CONFIG,
                owner=owner,
                existing=cm_by_name,
                annotations=annotations,
            )

        for key in plan.delete_members:
            await self.api.delete(kube.SECRETS.path(ns, membership.member_object_name(key, "node")))
            await self.api.delete(kube.SECRETS.path(ns, membership.member_object_name(key, "cred")))
            await self.api.delete(kube.CONFIGMAPS.path(ns, membership.member_object_name(key)))
            log.info("released member %s/%s and deleted its Secrets", ns, key)

        # Status last: it reports work that is done.
        for vp in plan.vlans:
            cvlan = cvlans[vp.name]
            old = parse_status(cvlan.get("status"))
            new_status = vp.status.model_dump(by_alias=True, mode="json")
            if new_status != old.model_dump(by_alias=True, mode="json"):
                await self.api.patch(
                    kube.CRYPTOVLANS.path(ns, vp.name, "status"), {"status": new_status}
                )
                await events.post(
                    self.api,
                    {"kind": "CryptoVLAN", **cvlan},
                    [
                        *events.condition_changes(old.conditions, vp.status.conditions),
                        *events.member_changes(old.members, vp.status.members),
                    ],
                    now=self.clock(),
                )
            metrics.MEMBERS.labels(ns, vp.name).set(vp.status.member_count)
            metrics.READY_MEMBERS.labels(ns, vp.name).set(
                sum(1 for m in vp.status.members if m.ready)
            )

    async def _ensure_secret(
        self,
        ns: str,
        *,
        name: str,
        data: Mapping[str, str],
        component: str,
        owner: Mapping[str, Any] | None,
        existing: Mapping[str, JsonObj],
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        current = existing.get(name)
        if current is None:
            meta = objects.metadata(
                name=name, namespace=ns, component=component, owner=owner, annotations=annotations
            )
            await self.api.create(kube.SECRETS.path(ns), objects.secret(meta=meta, data=data))
            return
        have = objects.decode(current.get("data"))
        if have != dict(data):
            patch: dict[str, str | None] = {k: None for k in have if k not in data}
            patch.update(objects.encode({k: v for k, v in data.items() if have.get(k) != v}))
            await self.api.patch(kube.SECRETS.path(ns, name), {"data": patch})

    async def _ensure_configmap(
        self,
        ns: str,
        *,
        name: str,
        data: Mapping[str, str],
        component: str,
        owner: Mapping[str, Any] | None,
        existing: Mapping[str, JsonObj],
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        current = existing.get(name)
        if current is None:
            meta = objects.metadata(
                name=name,
                namespace=ns,
                component=component,
                owner=owner,
                labels=labels,
                annotations=annotations,
            )
            await self.api.create(kube.CONFIGMAPS.path(ns), objects.configmap(meta=meta, data=data))
            return
        have = dict(current.get("data") or {})
        if have != dict(data):
            patch: dict[str, str | None] = {k: None for k in have if k not in data}
            patch.update({k: v for k, v in data.items() if have.get(k) != v})
            await self.api.patch(kube.CONFIGMAPS.path(ns, name), {"data": patch})

    async def cleanup_vlan(self, namespace: str, name: str) -> None:
        """After the VLAN left every member's config: delete its authority and ConfigMap."""
        await self.reconcile_namespace(namespace)
        async with self.lock(namespace):
            await self.api.delete(
                kube.CONFIGMAPS.path(namespace, membership.vlan_configmap_name(name))
            )
            await self.api.delete(
                kube.SECRETS.path(namespace, membership.authority_secret_name(name))
            )
            for gauge in (metrics.MEMBERS, metrics.READY_MEMBERS):
                with contextlib.suppress(KeyError):
                    gauge.remove(namespace, name)
        log.info("cleaned up CryptoVLAN %s/%s", namespace, name)


def _presence_seconds(mvlan: Mapping[str, Any]) -> float | None:
    """The MVLAN's presenceInterval in seconds; None when unset or invalid (its own
    reconcile reports an invalid spec)."""
    spec, problems = specs.check_mvlan(mvlan.get("spec"))
    if spec is None or problems or spec.presence_interval is None:
        return None
    try:
        return render.duration_seconds(spec.presence_interval)
    except ValueError:
        return None


def _member_objects(
    secrets: list[JsonObj], configmaps: list[JsonObj]
) -> dict[str, membership.MemberObjects]:
    """Member keys that have objects, with their node key and credentials."""
    node_keys: dict[str, identity.Identity] = {}
    creds: dict[str, dict[str, str]] = {}
    keys: set[str] = set()
    for obj in [*secrets, *configmaps]:
        key = objects.annotations_of(obj).get(objects.MEMBER_KEY)
        if not key:
            continue
        keys.add(key)
        if objects.managed(obj, objects.MEMBER_NODE_KEY):
            pem = objects.decode(obj.get("data")).get(render.KEY_FILE, "")
            try:
                node_keys[key] = identity.from_pem(pem.encode(), source=objects.name_of(obj))
            except identity.IdentityError:
                log.warning(
                    "node key Secret %s is unreadable; issuing a new key", objects.name_of(obj)
                )
        elif objects.managed(obj, objects.MEMBER_CREDENTIALS):
            creds[key] = objects.decode(obj.get("data"))
    return {
        k: membership.MemberObjects(node_key=node_keys.get(k), credentials=creds.get(k, {}))
        for k in keys
    }
