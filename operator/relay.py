"""MVLAN: the relay Deployment, its Service on port 4001, and status.relayAddresses.

Object shapes and addresses are pure functions (`relay_objects`,
`relay_addresses`); `RelayReconciler` gathers, decides and applies. Objects are
rewritten only when the hash of their desired form changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from peertap.sidecar import identity

from . import admission, conditions, kube, metrics, models, objects, render, specs

log = logging.getLogger(__name__)

JsonObj = dict[str, Any]
HASH_ANNOTATION = "peertap.io/config-hash"


def names(mvlan: str) -> dict[str, str]:
    return {"workload": f"{mvlan}-relay", "key": f"{mvlan}-relay-key", "config": f"{mvlan}-relay"}


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def relay_objects(
    *, mvlan: Mapping[str, Any], spec: models.MVLANSpec, image: str
) -> dict[str, JsonObj]:
    """The desired ConfigMap, Deployment and Service of an MVLAN (the key Secret is separate)."""
    meta = mvlan["metadata"]
    ns, name = meta["namespace"], meta["name"]
    n = names(name)
    selector = {
        "app.kubernetes.io/name": "peertap-relay",
        "app.kubernetes.io/instance": name,
    }
    config = render.relay_config(spec)
    pod_labels = {**selector, "peertap.io/role": "relay"}
    container = {
        "name": "peertap",
        "image": image,
        "command": ["peertap", "run", "--config", f"{admission.CONFIG_DIR}/{render.CONFIG_FILE}"],
        "ports": [
            {"name": "p2p", "containerPort": render.P2P_PORT, "protocol": "TCP"},
            {"name": "api", "containerPort": admission.READY_PORT, "protocol": "TCP"},
        ],
        "volumeMounts": [
            {"name": "peertap-config", "mountPath": admission.CONFIG_DIR, "readOnly": True}
        ],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": admission.READY_PORT}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": admission.READY_PORT}},
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    deployment_spec = {
        "replicas": spec.relays.replicas,
        "strategy": {"type": "Recreate"},
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {
                "labels": pod_labels,
                "annotations": {HASH_ANNOTATION: _hash(config)},
            },
            "spec": {
                "containers": [container],
                "volumes": [
                    {
                        "name": "peertap-config",
                        "projected": {
                            "defaultMode": 0o440,
                            "sources": [
                                {"configMap": {"name": n["config"]}},
                                {"secret": {"name": n["key"]}},
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
        "ports": [{"name": "p2p", "port": render.P2P_PORT, "targetPort": "p2p", "protocol": "TCP"}],
    }

    def with_hash(component: str, obj_name: str, body: JsonObj) -> JsonObj:
        return objects.metadata(
            name=obj_name,
            namespace=ns,
            component=component,
            owner=mvlan,
            labels=selector,
            annotations={HASH_ANNOTATION: _hash(body)},
        )

    return {
        "configmap": objects.configmap(
            meta=with_hash(objects.RELAY_CONFIG, n["config"], {"node.json": config}),
            data={render.CONFIG_FILE: config},
        ),
        "deployment": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": with_hash("relay", n["workload"], deployment_spec),
            "spec": deployment_spec,
        },
        "service": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": with_hash("relay", n["workload"], service_spec),
            "spec": service_spec,
        },
    }


def _node_addresses(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    out = []
    for node in nodes:
        addrs = (node.get("status") or {}).get("addresses") or []
        by_type = {a.get("type"): a.get("address") for a in addrs}
        addr = by_type.get("ExternalIP") or by_type.get("InternalIP")
        if addr:
            out.append(str(addr))
    return sorted(set(out))


def _ip_proto(addr: str) -> str:
    return "ip6" if ":" in addr else "ip4"


def relay_addresses(
    *, service: Mapping[str, Any] | None, nodes: Sequence[Mapping[str, Any]], peer_id: str
) -> list[str]:
    """Multiaddrs that reach the relay, most external first, each ending in /p2p/<peer id>."""
    if service is None:
        return []
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    port: Mapping[str, Any] = next(iter(spec.get("ports") or []), {})
    suffix = f"/p2p/{peer_id}"
    out: list[str] = []
    kind = spec.get("type", "ClusterIP")
    if kind == "LoadBalancer":
        for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get(
            "ingress"
        ) or []:
            if ingress.get("ip"):
                ip = ingress["ip"]
                out.append(f"/{_ip_proto(ip)}/{ip}/tcp/{render.P2P_PORT}{suffix}")
            elif ingress.get("hostname"):
                out.append(f"/dns/{ingress['hostname']}/tcp/{render.P2P_PORT}{suffix}")
    if kind in ("NodePort", "LoadBalancer") and port.get("nodePort"):
        for ip in _node_addresses(nodes):
            out.append(f"/{_ip_proto(ip)}/{ip}/tcp/{port['nodePort']}{suffix}")
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and cluster_ip != "None":
        out.append(f"/{_ip_proto(cluster_ip)}/{cluster_ip}/tcp/{render.P2P_PORT}{suffix}")
    out.append(f"/dns/{meta.get('name')}.{meta.get('namespace')}.svc/tcp/{render.P2P_PORT}{suffix}")
    return out


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
    ) -> None:
        self.api = api
        self.image = image
        self.clock = clock
        self.new_identity = new_identity

    async def _relay_key(self, mvlan: Mapping[str, Any]) -> identity.Identity:
        meta = mvlan["metadata"]
        ns, name = meta["namespace"], names(meta["name"])["key"]
        found = await self.api.get(kube.SECRETS.path(ns, name))
        if found is None:
            key = self.new_identity()
            body = objects.secret(
                meta=objects.metadata(
                    name=name, namespace=ns, component=objects.RELAY_KEY, owner=mvlan
                ),
                data={render.KEY_FILE: identity.to_pem(key).decode()},
            )
            try:
                await self.api.create(kube.SECRETS.path(ns), body)
                return key
            except kube.Conflict:
                found = await self.api.get(kube.SECRETS.path(ns, name))
                if found is None:
                    raise
        pem = objects.decode(found.get("data")).get(render.KEY_FILE, "")
        return identity.from_pem(pem.encode(), source=f"Secret {ns}/{name}")

    async def _ensure(self, resource: kube.Resource, body: JsonObj) -> JsonObj:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        current = await self.api.get(resource.path(ns, name))
        if current is None:
            return await self.api.create(resource.path(ns), body)
        want = meta["annotations"][HASH_ANNOTATION]
        if objects.annotations_of(current).get(HASH_ANNOTATION) == want:
            return current
        patch = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
        return await self.api.patch(resource.path(ns, name), patch)

    async def reconcile(self, mvlan: Mapping[str, Any]) -> models.MVLANStatus:
        try:
            status = await self._run(mvlan)
        except Exception as err:
            metrics.RECONCILES.labels("MVLAN", "error").inc()
            metrics.ERRORS.labels("MVLAN", type(err).__name__).inc()
            raise
        metrics.RECONCILES.labels("MVLAN", "ok").inc()
        return status

    async def _run(self, mvlan: Mapping[str, Any]) -> models.MVLANStatus:
        meta = mvlan["metadata"]
        ns, name = meta["namespace"], meta["name"]
        now = self.clock()
        previous = parse_status(mvlan.get("status"))
        spec, problems = specs.check_mvlan(mvlan.get("spec"))
        if spec is None or problems:
            message = "; ".join(m for _, m in problems)
            reason = problems[0][0] if problems else "InvalidSpec"
            wanted = [
                conditions.make("SpecValid", False, reason, message),
                conditions.make("Ready", False, reason, "the relay is not changed until fixed"),
            ]
            status = previous.model_copy(
                update={
                    "conditions": conditions.merge(previous.conditions, wanted, now=now),
                    "observed_generation": int(meta.get("generation") or 0),
                }
            )
            await self._patch_status(ns, name, previous, status)
            return status
        key = await self._relay_key(mvlan)
        desired = relay_objects(mvlan=mvlan, spec=spec, image=self.image)
        await self._ensure(kube.CONFIGMAPS, desired["configmap"])
        await self._ensure(kube.DEPLOYMENTS, desired["deployment"])
        service = await self._ensure(kube.SERVICES, desired["service"])
        nodes: list[JsonObj] = []
        if spec.relays.service_type != "ClusterIP":
            try:
                nodes = await self.api.list_objects(kube.NODES.path())
            except kube.KubeError as err:
                log.warning("cannot list nodes for NodePort addresses: %s", err)
        addresses = relay_addresses(service=service, nodes=nodes, peer_id=key.peer_id)
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        waiting = spec.relays.service_type == "LoadBalancer" and not ingress
        wanted = [
            conditions.make("SpecValid", True, "Valid", "spec is valid"),
            conditions.make(
                "Ready",
                not waiting and spec.relays.replicas > 0,
                "WaitingForLoadBalancer"
                if waiting
                else ("Paused" if spec.relays.replicas == 0 else "Reconciled"),
                f"relay peer {key.peer_id}, {len(addresses)} addresses",
            ),
        ]
        status = previous.model_copy(
            update={
                "relay_addresses": addresses,
                "conditions": conditions.merge(previous.conditions, wanted, now=now),
                "observed_generation": int(meta.get("generation") or 0),
            }
        )
        await self._patch_status(ns, name, previous, status)
        return status

    async def _patch_status(
        self, ns: str, name: str, previous: models.MVLANStatus, status: models.MVLANStatus
    ) -> None:
        new = status.model_dump(by_alias=True, mode="json")
        if new != previous.model_dump(by_alias=True, mode="json"):
            await self.api.patch(kube.MVLANS.path(ns, name, "status"), {"status": new})

    async def cleanup(self, namespace: str, name: str) -> None:
        n = names(name)
        await self.api.delete(kube.DEPLOYMENTS.path(namespace, n["workload"]))
        await self.api.delete(kube.SERVICES.path(namespace, n["workload"]))
        await self.api.delete(kube.CONFIGMAPS.path(namespace, n["config"]))
        await self.api.delete(kube.SECRETS.path(namespace, n["key"]))
        log.info("cleaned up MVLAN %s/%s", namespace, name)
