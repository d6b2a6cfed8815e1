"""MVLAN: its relays (one Deployment of one pod, one key and one Service each) on port 4001
(TCP for the trunk stream, UDP for the datagram path), status.relayAddresses and
status.peersSeen.

Each relay is a libp2p peer with its own identity, so replicas are separate
Deployments of one pod rather than one Deployment of N: relay 0 is
`<mvlan>-relay` (the names an MVLAN had when it had one relay), relay i is
`<mvlan>-relay-<i>`, each with Secret `<name>-key` and its own Service, so every
relay is reachable at its own address. They share the ConfigMap `<mvlan>-relay`.

Trunk admission: every relay holds, in Secret `<name>-cred`, one node credential per
CryptoVLAN whose `mvlanRef` names the MVLAN, signed by that VLAN's authority
(`node_credentials`), and its config admits the peers those authorities vouched for
(`render.admission`). The credentials are written before the config that names them.
Object shapes and addresses are pure functions (`relay_objects` here,
`relay_addresses`); `RelayReconciler` gathers, decides and applies. Objects are
rewritten only when the hash of their desired form changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from peertap.sidecar import identity, ids

from . import (
    admission,
    conditions,
    events,
    kube,
    membership,
    metrics,
    models,
    node_credentials,
    objects,
    podspec,
    relay_addresses,
    render,
    revocations,
    selectors,
    sidecar_status,
    specs,
)

log = logging.getLogger(__name__)

JsonObj = dict[str, Any]
HASH_ANNOTATION = "peertap.io/config-hash"


RELAY_LABEL = "peertap.io/relay"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"


def relay_name(mvlan: str, ordinal: int) -> str:
    """The Deployment and Service of relay `ordinal`. The first keeps the name it had when an
    MVLAN had a single relay, so its Service (and a load balancer's address) survives upgrades."""
    return f"{mvlan}-relay" if ordinal == 0 else f"{mvlan}-relay-{ordinal}"


def key_name(mvlan: str, ordinal: int) -> str:
    """The Secret holding relay `ordinal`'s node key: its identity."""
    return f"{relay_name(mvlan, ordinal)}-key"


def cred_name(mvlan: str, ordinal: int) -> str:
    """The Secret holding relay `ordinal`'s node credentials (renewed; the key is not)."""
    return f"{relay_name(mvlan, ordinal)}-cred"


def config_name(mvlan: str) -> str:
    """The ConfigMap with the node.json every relay of the MVLAN shares."""
    return f"{mvlan}-relay"


def slots(spec: models.MVLANSpec) -> int:
    """How many relay identities the MVLAN keeps: a paused MVLAN keeps the first."""
    return max(spec.relays.replicas, 1)


def _ordinal(obj: Mapping[str, Any], mvlan: str, suffix: str) -> int | None:
    """The ordinal (>= 1) of an operator-made relay object of this MVLAN, from its name."""
    labels = objects.labels_of(obj)
    if labels.get(objects.MANAGED_BY) != objects.OPERATOR or labels.get(INSTANCE_LABEL) != mvlan:
        return None
    match = re.fullmatch(
        re.escape(mvlan) + r"-relay-([1-9][0-9]{0,3})" + suffix, objects.name_of(obj)
    )
    return int(match.group(1)) if match else None


def extra_ordinals(objs: Sequence[Mapping[str, Any]], mvlan: str, *, suffix: str = "") -> set[int]:
    """Ordinals >= 1 that have objects (Deployments/Services; Secrets with suffix "-key")."""
    found = (_ordinal(o, mvlan, re.escape(suffix)) for o in objs)
    return {n for n in found if n is not None}


def referencing_vlans(
    cvlans: Sequence[Mapping[str, Any]], mvlan: str, listed: Sequence[str] = ()
) -> list[str]:
    """Names of the CryptoVLANs (not being deleted) the MVLAN's relays serve: those whose
    spec.mvlanRef names `mvlan`, and those the MVLAN lists in spec.cryptoVLANs (`listed`)."""
    out = []
    for cvlan in cvlans:
        meta = cvlan.get("metadata") or {}
        ref = ((cvlan.get("spec") or {}).get("mvlanRef") or {}).get("name")
        name = str(meta.get("name", ""))
        if (ref == mvlan or name in listed) and not meta.get("deletionTimestamp"):
            out.append(name)
    return sorted(out)


def vlan_label(cvlan: Mapping[str, Any]) -> str:
    """The label in force: the recorded annotation, else spec.label, else the name."""
    recorded = objects.annotations_of(cvlan).get(specs.LABEL_ANNOTATION)
    return str(
        recorded or (cvlan.get("spec") or {}).get("label") or (cvlan.get("metadata") or {})["name"]
    )


@dataclass(frozen=True)
class ServedVlan:
    """A CryptoVLAN the relays serve: its authority public key and VLAN-ID (hex); `key` is the
    authority's private key, None while its Secret is missing (existing credentials are kept,
    nothing new is signed)."""

    authority_hex: str
    vlan_id: str
    key: identity.Identity | None
    # Private (mls) VLANs: the label and the signed revocation list (armoured text, empty
    # before the first), which the relays send on over the management VLAN.
    label: str | None = None
    revocation_list: str = ""


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RelayUnit:
    """One relay: its Deployment (one pod) and Service, keyed by Secret `key`."""

    ordinal: int
    name: str
    key: str
    deployment: JsonObj
    service: JsonObj


@dataclass(frozen=True)
class Desired:
    configmap: JsonObj
    relays: Sequence[RelayUnit]

    def all(self) -> list[JsonObj]:
        return [self.configmap, *(o for r in self.relays for o in (r.deployment, r.service))]


def relay_objects(
    *,
    mvlan: Mapping[str, Any],
    spec: models.MVLANSpec,
    image: str,
    served: Mapping[str, ServedVlan] | None = None,
    pod: podspec.PodSettings | None = None,
) -> Desired:
    """The desired shared ConfigMap and, per relay, a Deployment and a Service (keys and
    credentials are separate: keys are created once, credentials signed per relay).
    `served`: the CryptoVLANs the relays serve, by name."""
    meta = mvlan["metadata"]
    ns, name = meta["namespace"], meta["name"]
    instance = {NAME_LABEL: "peertap-relay", INSTANCE_LABEL: name}
    served = served or {}
    private = {v: s for v, s in sorted(served.items()) if s.label is not None}
    config = render.relay_config(
        spec,
        {v: s.authority_hex for v, s in served.items()},
        vlan_ids=[s.vlan_id for s in served.values()],
        revocations=[
            (s.authority_hex, s.label or "", revocations.file_name(v)) for v, s in private.items()
        ],
    )
    # The lists are files next to node.json, re-read by the relays when they change; the
    # pods' config hash covers node.json only, so a new list restarts no relay.
    revocation_files = {
        revocations.file_name(v): s.revocation_list for v, s in private.items() if s.revocation_list
    }
    settings = pod or podspec.PodSettings()

    def meta_for(
        component: str, obj_name: str, body: JsonObj, labels: Mapping[str, str]
    ) -> JsonObj:
        return objects.metadata(
            name=obj_name,
            namespace=ns,
            component=component,
            owner=mvlan,
            labels=labels,
            annotations={HASH_ANNOTATION: _hash(body)},
        )

    units = []
    for ordinal in range(slots(spec)):
        unit_name = relay_name(name, ordinal)
        selector = {**instance, RELAY_LABEL: unit_name}
        container = {
            "name": "peertap",
            "image": image,
            "command": [
                "peertap",
                "run",
                "--config",
                f"{admission.CONFIG_DIR}/{render.CONFIG_FILE}",
            ],
            "ports": [
                {"name": "p2p", "containerPort": render.P2P_PORT, "protocol": "TCP"},
                # The datagram path (trunk.datagram_port defaults to the TCP listen port).
                {"name": "p2p-udp", "containerPort": render.P2P_PORT, "protocol": "UDP"},
                {"name": "api", "containerPort": admission.READY_PORT, "protocol": "TCP"},
            ],
            "volumeMounts": [
                {"name": "peertap-config", "mountPath": admission.CONFIG_DIR, "readOnly": True}
            ],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": admission.READY_PORT}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": admission.READY_PORT}},
            # A relay has no VLAN interface: it needs no capability at all.
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "resources": dict(settings.relay_resources),
        }
        deployment_spec = {
            # One pod per identity: two pods with one key would be one peer twice.
            "replicas": 1 if spec.relays.replicas > 0 else 0,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": {**selector, selectors.ROLE_LABEL: "relay"},
                    "annotations": {HASH_ANNOTATION: _hash(config)},
                },
                "spec": {
                    # Relays never talk to the Kubernetes API.
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": podspec.DEFAULT_USER,
                        "runAsGroup": podspec.DEFAULT_USER,
                        # The projected key and config files (mode 0440) belong to this group.
                        "fsGroup": podspec.DEFAULT_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "peertap-config",
                            "projected": {
                                "defaultMode": 0o440,
                                "sources": [
                                    {"configMap": {"name": config_name(name)}},
                                    {"secret": {"name": key_name(name, ordinal)}},
                                    {"secret": {"name": cred_name(name, ordinal)}},
                                ],
                            },
                        }
                    ],
                },
            },
        }
        service_spec = {
            "type": spec.relays.service_type,
            "selector": selector,
            # TCP first: relay addresses are read from the first port (relay_addresses).
            "ports": [
                {"name": "p2p", "port": render.P2P_PORT, "targetPort": "p2p", "protocol": "TCP"},
                {
                    "name": "p2p-udp",
                    "port": render.P2P_PORT,
                    "targetPort": "p2p-udp",
                    "protocol": "UDP",
                },
            ],
        }
        units.append(
            RelayUnit(
                ordinal=ordinal,
                name=unit_name,
                key=key_name(name, ordinal),
                deployment={
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": meta_for("relay", unit_name, deployment_spec, selector),
                    "spec": deployment_spec,
                },
                service={
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": meta_for("relay", unit_name, service_spec, selector),
                    "spec": service_spec,
                },
            )
        )
    data = {render.CONFIG_FILE: config, **revocation_files}
    configmap = objects.configmap(
        # The hash covers every file, so a new revocation list is written; the pods' own
        # hash (above) covers node.json only, so it restarts no relay.
        meta=meta_for(objects.RELAY_CONFIG, config_name(name), data, instance),
        data=data,
    )
    return Desired(configmap=configmap, relays=units)


def parse_status(raw: Mapping[str, Any] | None) -> models.MVLANStatus:
    known = {f.alias or n for n, f in models.MVLANStatus.model_fields.items()}
    try:
        return models.MVLANStatus.model_validate(
            {k: v for k, v in (raw or {}).items() if k in known}
        )
    except ValidationError:
        return models.MVLANStatus()


class RelayReconciler:
    def __init__(
        self,
        api: kube.KubeApi,
        *,
        image: str,
        clock: Callable[[], dt.datetime],
        new_identity: Callable[[], identity.Identity] = identity.generate,
        pod: podspec.PodSettings | None = None,
    ) -> None:
        self.api = api
        self.image = image
        self.pod = pod or podspec.PodSettings()
        self.clock = clock
        self.new_identity = new_identity
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault((namespace, name), asyncio.Lock())

    async def _relay_key(self, mvlan: Mapping[str, Any], ordinal: int) -> identity.Identity:
        """Relay `ordinal`'s key: read from its Secret, which is created only when missing."""
        meta = mvlan["metadata"]
        ns, name = meta["namespace"], key_name(meta["name"], ordinal)
        found = await self.api.get(kube.SECRETS.path(ns, name))
        if found is None:
            key = self.new_identity()
            body = objects.secret(
                meta=objects.metadata(
                    name=name,
                    namespace=ns,
                    component=objects.RELAY_KEY,
                    owner=mvlan,
                    labels={
                        INSTANCE_LABEL: meta["name"],
                        RELAY_LABEL: relay_name(meta["name"], ordinal),
                    },
                ),
                data={render.KEY_FILE: identity.to_pem(key).decode()},
            )
            try:
                await self.api.create(kube.SECRETS.path(ns), body)
                log.info("created relay key Secret %s/%s", ns, name)
                return key
            except kube.Conflict:
                found = await self.api.get(kube.SECRETS.path(ns, name))
                if found is None:
                    raise
        pem = objects.decode(found.get("data")).get(render.KEY_FILE, "")
        return identity.from_pem(pem.encode(), source=f"Secret {ns}/{name}")

    async def _served(self, ns: str, name: str, listed: Sequence[str]) -> dict[str, ServedVlan]:
        """The CryptoVLANs the relays of MVLAN `name` serve (naming it in mvlanRef, or in its
        `listed` cryptoVLANs), with their authority keys. A VLAN whose authority Secret holds
        no usable key, or another key than the one recorded on the VLAN, is left out until it
        is usable, as its own reconcile reports; one whose Secret is gone but whose key is
        recorded stays served with the credentials the relays hold (nothing new is signed)."""
        cvlans = await self.api.list_objects(kube.CRYPTOVLANS.path(ns))
        wanted = set(referencing_vlans(cvlans, name, listed))
        by_name = {objects.name_of(c): c for c in cvlans}
        out: dict[str, ServedVlan] = {}
        if not wanted:
            return out
        # By name, as the CryptoVLAN reconcile finds it (a copied Secret may lack our labels).
        secrets = {
            objects.name_of(s): s for s in await self.api.list_objects(kube.SECRETS.path(ns))
        }
        configmaps = {
            objects.name_of(c): c for c in await self.api.list_objects(kube.CONFIGMAPS.path(ns))
        }
        for vlan in sorted(wanted):
            cvlan = by_name[vlan]
            recorded = objects.annotations_of(cvlan).get(specs.AUTHORITY_ANNOTATION)
            label = vlan_label(cvlan)
            private: dict[str, Any] = {}
            if (cvlan.get("spec") or {}).get("security") == "mls":
                cm = configmaps.get(membership.vlan_configmap_name(vlan)) or {}
                private = {
                    "label": label,
                    "revocation_list": revocations.parse(cm.get("data")).text,
                }
            secret = secrets.get(membership.authority_secret_name(vlan))
            if secret is None:
                if recorded:
                    out[vlan] = ServedVlan(
                        recorded, ids.vlan_id_hex(recorded, label), None, **private
                    )
                continue
            pem = objects.decode(secret.get("data")).get("authority.key", "")
            try:
                key = identity.from_pem(pem.encode(), source=objects.name_of(secret))
            except identity.IdentityError:
                log.warning("authority of CryptoVLAN %s/%s is unreadable", ns, vlan)
                continue
            if recorded not in (None, key.public_hex):
                continue
            out[vlan] = ServedVlan(
                key.public_hex, ids.vlan_id_hex(key.public_hex, label), key, **private
            )
        return out

    async def _ensure_credentials(
        self,
        mvlan: Mapping[str, Any],
        ordinal: int,
        key: identity.Identity,
        served: Mapping[str, ServedVlan],
        now: dt.datetime,
    ) -> None:
        """Relay `ordinal`'s credential Secret holds exactly its good node credentials (and
        keeps, unrenewed, those of VLANs whose authority key is missing)."""
        meta = mvlan["metadata"]
        ns, name = meta["namespace"], cred_name(meta["name"], ordinal)
        found = await self.api.get(kube.SECRETS.path(ns, name))
        have = objects.decode(found.get("data")) if found is not None else {}
        want = node_credentials.holdings(
            have,
            authorities={v: s.key for v, s in served.items() if s.key is not None},
            node_key=key.public_bytes,
            node_identity=f"{ns}/{relay_name(meta['name'], ordinal)}",
            now=now,
        )
        for vlan, s in served.items():
            kept = have.get(node_credentials.file_name(vlan))
            if s.key is None and kept is not None:
                want[node_credentials.file_name(vlan)] = kept
        if found is None:
            body = objects.secret(
                meta=objects.metadata(
                    name=name,
                    namespace=ns,
                    component=objects.RELAY_CREDENTIALS,
                    owner=mvlan,
                    labels={
                        INSTANCE_LABEL: meta["name"],
                        RELAY_LABEL: relay_name(meta["name"], ordinal),
                    },
                ),
                data=want,
            )
            try:
                await self.api.create(kube.SECRETS.path(ns), body)
            except kube.Conflict:
                log.info("credential Secret %s/%s appeared concurrently", ns, name)
            return
        if have != want:
            patch: dict[str, str | None] = {k: None for k in have if k not in want}
            patch.update(objects.encode({k: v for k, v in want.items() if have.get(k) != v}))
            await self.api.patch(kube.SECRETS.path(ns, name), {"data": patch})
            log.info("renewed node credentials in %s/%s", ns, name)

    async def _ensure(self, resource: kube.Resource, body: JsonObj) -> JsonObj:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        current = await self.api.get(resource.path(ns, name))
        if current is None:
            return await self.api.create(resource.path(ns), body)
        want = meta["annotations"][HASH_ANNOTATION]
        if objects.annotations_of(current).get(HASH_ANNOTATION) == want:
            return current
        if (
            resource == kube.DEPLOYMENTS
            and (current.get("spec") or {}).get("selector") != body["spec"]["selector"]
        ):
            # A Deployment's selector is immutable (single-relay releases selected without
            # the per-relay label): replace it; the key, and so the identity, stays.
            await self.api.delete(resource.path(ns, name))
            log.info("replacing Deployment %s/%s to change its selector", ns, name)
            return await self.api.create(resource.path(ns), body)
        patch = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
        return await self.api.patch(resource.path(ns, name), patch)

    async def reconcile(
        self, mvlan: Mapping[str, Any], *, observe: bool = False
    ) -> models.MVLANStatus:
        """Bring the relays in line with the spec; with `observe` (the periodic resync) also
        ask the relays' sidecars which peers they see.

        Runs for one MVLAN are serialised and act on the object as it is now, not on the
        copy the event carried: the resync and an update handler may overlap, and a run
        with a stale replica count would delete the keys the other just made.
        """
        meta = mvlan["metadata"]
        ns, name = meta["namespace"], meta["name"]
        try:
            async with self._lock(ns, name):
                current = await self.api.get(kube.MVLANS.path(ns, name))
                if current is None:
                    return parse_status(mvlan.get("status"))
                status = await self._run(current, observe=observe)
        except Exception as err:
            metrics.RECONCILES.labels("MVLAN", "error").inc()
            metrics.ERRORS.labels("MVLAN", type(err).__name__).inc()
            raise
        metrics.RECONCILES.labels("MVLAN", "ok").inc()
        return status

    async def _run(self, mvlan: Mapping[str, Any], *, observe: bool) -> models.MVLANStatus:
        meta = mvlan["metadata"]
        ns, name = meta["namespace"], meta["name"]
        now = self.clock()
        previous = parse_status(mvlan.get("status"))
        gen = int(meta.get("generation") or 0)
        spec, problems = specs.check_mvlan(mvlan.get("spec"))
        if spec is None or problems:
            message = "; ".join(m for _, m in problems)
            reason = problems[0][0] if problems else "InvalidSpec"
            wanted = [
                conditions.make("SpecValid", False, reason, message, generation=gen),
                conditions.make(
                    "Ready", False, reason, "the relays are not changed until fixed", generation=gen
                ),
            ]
            status = previous.model_copy(
                update={
                    "conditions": conditions.merge(previous.conditions, wanted, now=now),
                    "observed_generation": int(meta.get("generation") or 0),
                }
            )
            await self._patch_status(mvlan, previous, status)
            return status
        served = await self._served(ns, name, spec.crypto_vlans)
        desired = relay_objects(
            mvlan=mvlan, spec=spec, image=self.image, served=served, pod=self.pod
        )
        keys = [await self._relay_key(mvlan, unit.ordinal) for unit in desired.relays]
        # Credentials first: a relay whose config names a missing credential file stops.
        for unit, key in zip(desired.relays, keys, strict=True):
            await self._ensure_credentials(mvlan, unit.ordinal, key, served, now)
        await self._ensure(kube.CONFIGMAPS, desired.configmap)
        services = []
        for unit in desired.relays:
            await self._ensure(kube.DEPLOYMENTS, unit.deployment)
            services.append(await self._ensure(kube.SERVICES, unit.service))
        await self._remove_extra(ns, name, keep=len(desired.relays))
        nodes: list[JsonObj] = []
        if spec.relays.service_type != "ClusterIP":
            try:
                nodes = await self.api.list_objects(kube.NODES.path())
            except kube.KubeError as err:
                log.warning("cannot list nodes for NodePort addresses: %s", err)
        addresses = relay_addresses.all_relay_addresses(
            [(svc, key.peer_id) for svc, key in zip(services, keys, strict=True)], nodes=nodes
        )
        waiting = spec.relays.service_type == "LoadBalancer" and not all(
            ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") for svc in services
        )
        peer_ids = ", ".join(k.peer_id for k in keys)
        about = (
            f"relay peer{'s' if len(keys) > 1 else ''} {peer_ids}, {len(addresses)} addresses, "
            f"serving CryptoVLANs: {', '.join(sorted(served)) or 'none'}"
        )
        cvlan_names = {
            objects.name_of(c) for c in await self.api.list_objects(kube.CRYPTOVLANS.path(ns))
        }
        missing = sorted(set(spec.crypto_vlans) - cvlan_names)
        if waiting:
            ready = conditions.make("Ready", False, "WaitingForLoadBalancer", about, generation=gen)
        elif spec.relays.replicas == 0:
            ready = conditions.make("Ready", False, "Paused", about, generation=gen)
        elif missing:
            ready = conditions.make(
                "Ready",
                False,
                "CryptoVLANNotFound",
                f"spec.cryptoVLANs names CryptoVLANs that do not exist in this namespace: "
                f"{', '.join(missing)}; {about}",
                generation=gen,
            )
        else:
            ready = conditions.make("Ready", True, "Reconciled", about, generation=gen)
        wanted = [
            conditions.make("SpecValid", True, "Valid", "spec is valid", generation=gen),
            ready,
        ]
        update: dict[str, Any] = {
            "relay_addresses": addresses,
            "conditions": conditions.merge(previous.conditions, wanted, now=now),
            "observed_generation": int(meta.get("generation") or 0),
        }
        if observe:
            reports = await self._observe(ns, name)
            update["peers_seen"] = sidecar_status.peers_seen(
                reports, exclude=[k.peer_id for k in keys]
            )
        status = previous.model_copy(update=update)
        await self._patch_status(mvlan, previous, status)
        return status

    async def reconcile_namespace(self, namespace: str) -> None:
        """Reconcile every MVLAN of the namespace: a CryptoVLAN that came, went or changed
        its mvlanRef changes which authorities the relays hold credentials from."""
        for mvlan in await self.api.list_objects(kube.MVLANS.path(namespace)):
            if not (mvlan.get("metadata") or {}).get("deletionTimestamp"):
                await self.reconcile(mvlan)

    async def _observe(self, ns: str, name: str) -> list[sidecar_status.Report]:
        """The reports of this MVLAN's relay pods that answered."""
        targets = {}
        for pod in await self.api.list_objects(kube.PODS.path(ns)):
            labels = objects.labels_of(pod)
            ip = sidecar_status.pod_ip(pod)
            mine = labels.get(INSTANCE_LABEL) == name and labels.get(NAME_LABEL) == "peertap-relay"
            if ip and mine and labels.get(selectors.ROLE_LABEL) == "relay":
                targets[objects.name_of(pod)] = ip
        reports = await sidecar_status.fetch_reports(targets)
        log.debug("%d of %d relays of MVLAN %s/%s reported", len(reports), len(targets), ns, name)
        return list(reports.values())

    async def _remove_extra(self, ns: str, name: str, *, keep: int) -> None:
        """Delete the Deployments, Services and keys of relays numbered `keep` and above."""
        for resource, suffix in (
            (kube.DEPLOYMENTS, ""),
            (kube.SERVICES, ""),
            (kube.SECRETS, "-key"),
            (kube.SECRETS, "-cred"),
        ):
            found = extra_ordinals(
                await self.api.list_objects(resource.path(ns)), name, suffix=suffix
            )
            for ordinal in sorted(n for n in found if n >= keep):
                obj_name = relay_name(name, ordinal) + suffix
                await self.api.delete(resource.path(ns, obj_name))
                log.info("removed relay %s/%s (%s)", ns, obj_name, resource.plural)

    async def _patch_status(
        self, mvlan: Mapping[str, Any], previous: models.MVLANStatus, status: models.MVLANStatus
    ) -> None:
        meta = mvlan["metadata"]
        new = status.model_dump(by_alias=True, mode="json")
        if new != previous.model_dump(by_alias=True, mode="json"):
            await self.api.patch(
                kube.MVLANS.path(meta["namespace"], meta["name"], "status"), {"status": new}
            )
            await events.post(
                self.api,
                {"kind": "MVLAN", **mvlan},
                events.condition_changes(previous.conditions, status.conditions),
                now=self.clock(),
            )

    async def cleanup(self, namespace: str, name: str) -> None:
        async with self._lock(namespace, name):
            await self._remove_extra(namespace, name, keep=1)
            await self.api.delete(kube.DEPLOYMENTS.path(namespace, relay_name(name, 0)))
            await self.api.delete(kube.SERVICES.path(namespace, relay_name(name, 0)))
            await self.api.delete(kube.CONFIGMAPS.path(namespace, config_name(name)))
            await self.api.delete(kube.SECRETS.path(namespace, key_name(name, 0)))
            await self.api.delete(kube.SECRETS.path(namespace, cred_name(name, 0)))
        self._locks.pop((namespace, name), None)
        log.info("cleaned up MVLAN %s/%s", namespace, name)
