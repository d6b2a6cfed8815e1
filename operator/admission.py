"""Admission decisions: the sidecar JSONPatch for pods and the validation of PeerTap resources.

Pure functions over AdmissionReview `request` dicts; `servers` does the HTTPS.

How a sidecar finds its per-pod config: a pod may have no name at admission
(generateName), so the webhook gives every member pod a random member key in
the annotation `peertap.io/member` and mounts a projected volume built from
objects named after that key: ConfigMap `peertap-m-<key>` (node.json), Secret
`peertap-m-<key>-node` (node.key) and Secret `peertap-m-<key>-cred` (one
credential per VLAN). The operator creates them when it sees the pod; until
then the kubelet keeps the pod in ContainerCreating, so the sidecar never
starts without its config, and a pod only ever mounts its own key.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import membership, models, podspec, render, selectors, sidecar_status, specs

JsonObj = dict[str, Any]

SIDECAR_NAME = "peertap"
CONFIG_DIR = "/etc/peertap"
CONFIG_VOLUME = "peertap-config"
TUN_VOLUME = "peertap-tun"
READY_PORT = sidecar_status.API_PORT
_KEY_ALPHABET = string.ascii_lowercase + string.digits


def new_member_key() -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(12))


@dataclass(frozen=True)
class VlanSelector:
    name: str
    selector: models.LabelSelector | None


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def wants_sidecar(*, labels: Mapping[str, str], vlans: Sequence[VlanSelector]) -> list[str]:
    """Names of the CryptoVLANs the pod joins (empty: leave the pod alone)."""
    return sorted(
        v.name
        for v in vlans
        if selectors.pod_joins(vlan_name=v.name, selector=v.selector, labels=labels)
    ) or sorted(selectors.labelled_vlans(labels))


def sidecar_container(
    *, image: str, settings: podspec.PodSettings | None = None, groups: Sequence[int] = ()
) -> JsonObj:
    """The sidecar as a native sidecar (an init container that keeps running): the kubelet
    starts the app's containers only once its startup probe passed, so the VLAN interfaces
    exist before the app starts, and a Job's pod completes when its app containers do."""
    cfg = settings or podspec.PodSettings()
    probe = {"httpGet": {"path": "/readyz", "port": READY_PORT}}
    return {
        "name": SIDECAR_NAME,
        "image": image,
        "restartPolicy": "Always",
        "command": podspec.command(
            f"{CONFIG_DIR}/{render.CONFIG_FILE}", user=cfg.user, groups=groups
        ),
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ],
        "ports": [{"name": "peertap-p2p", "containerPort": render.P2P_PORT, "protocol": "TCP"}],
        "securityContext": podspec.security_context(user=cfg.user),
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": TUN_VOLUME, "mountPath": "/dev/net/tun"},
        ],
        # Up to 2 minutes to come up (the per-pod config is written when the operator sees
        # the pod); the app's containers wait for it.
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 60},
        "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
        "resources": dict(cfg.sidecar_resources),
    }


def has_sidecar(pod: Mapping[str, Any]) -> bool:
    """Whether the pod runs a PeerTap sidecar (native, or a plain container of old releases)."""
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    return any(c.get("name") == SIDECAR_NAME for c in containers)


def sidecar_ready(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's sidecar container reports ready (kubelet's view of /readyz)."""
    status = pod.get("status") or {}
    statuses = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    return any(s.get("name") == SIDECAR_NAME and s.get("ready") for s in statuses)


def sidecar_volumes(member_key: str) -> list[JsonObj]:
    return [
        {
            "name": CONFIG_VOLUME,
            "projected": {
                "defaultMode": 0o440,
                "sources": [
                    {"configMap": {"name": membership.member_object_name(member_key)}},
                    {"secret": {"name": membership.member_object_name(member_key, "node")}},
                    {"secret": {"name": membership.member_object_name(member_key, "cred")}},
                ],
            },
        },
        {"name": TUN_VOLUME, "hostPath": {"path": "/dev/net/tun", "type": "CharDevice"}},
    ]


def mutate_pod(
    pod: Mapping[str, Any],
    *,
    vlans: Sequence[VlanSelector],
    image: str,
    settings: podspec.PodSettings | None = None,
    new_key: Callable[[], str] = new_member_key,
) -> list[JsonObj]:
    """JSONPatch operations adding the sidecar; [] when the pod is no member or already has one."""
    meta = pod.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    if not wants_sidecar(labels=labels, vlans=vlans):
        return []
    spec = pod.get("spec") or {}
    if has_sidecar(pod):
        return []
    annotations = dict(meta.get("annotations") or {})
    key = annotations.get(membership.MEMBER_ANNOTATION) or new_key()
    ops: list[JsonObj] = []
    if "annotations" not in meta or meta.get("annotations") is None:
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    ops.append(
        {
            "op": "add",
            "path": "/metadata/annotations/" + _escape(membership.MEMBER_ANNOTATION),
            "value": key,
        }
    )
    sidecar = sidecar_container(image=image, settings=settings, groups=podspec.pod_groups(pod))
    # First of the init containers, so the interface exists for the others too.
    if spec.get("initContainers"):
        ops.append({"op": "add", "path": "/spec/initContainers/0", "value": sidecar})
    else:
        ops.append({"op": "add", "path": "/spec/initContainers", "value": [sidecar]})
    volumes = sidecar_volumes(key)
    if spec.get("volumes"):
        ops += [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in volumes]
    else:
        ops.append({"op": "add", "path": "/spec/volumes", "value": volumes})
    return ops


def missing_vlans(labels: Mapping[str, str], existing: Sequence[str]) -> list[str]:
    """CryptoVLANs the pod's peertap.io/vlans label names that do not exist (relay pods and
    unlabelled pods: none). Such a pod would get a sidecar whose config is never written."""
    if selectors.is_relay(labels):
        return []
    return sorted(selectors.labelled_vlans(labels) - set(existing))


def missing_vlans_message(missing: Sequence[str], namespace: str) -> str:
    return (
        f"label {selectors.VLANS_LABEL} names CryptoVLAN(s) {', '.join(missing)} that do not "
        f"exist in namespace {namespace}: create them first (a controller retries the pod), "
        "or fix the label"
    )


def interface_collisions(
    *, name: str, spec: models.CryptoVLANSpec, others: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Other CryptoVLANs of the namespace whose members get the same interface name: a pod
    in both could not have both interfaces."""
    mine = render.interface_name(render.effective_label(name, spec), spec)
    clashes = []
    for other in others:
        other_name = str((other.get("metadata") or {}).get("name") or "")
        if other_name == name or (other.get("metadata") or {}).get("deletionTimestamp"):
            continue
        other_spec, _ = specs.parse_cryptovlan(other.get("spec"))
        if other_spec is None:
            continue
        label = objects_label(other) or render.effective_label(other_name, other_spec)
        if render.interface_name(label, other_spec) == mine:
            clashes.append(
                f"spec.interface.name: CryptoVLAN {other_name} already uses interface {mine} "
                "in this namespace; set spec.interface.name to another name"
            )
    return clashes


def objects_label(obj: Mapping[str, Any]) -> str | None:
    """The label recorded on a CryptoVLAN by the operator (None before its first reconcile)."""
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(specs.LABEL_ANNOTATION)


def _names(obj: Mapping[str, Any] | None) -> tuple[str, Mapping[str, str]]:
    meta = (obj or {}).get("metadata") or {}
    return str(meta.get("name") or ""), dict(meta.get("annotations") or {})


def validate_cryptovlan(
    *,
    operation: str,
    obj: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    others: Sequence[Mapping[str, Any]] = (),
) -> list[str]:
    """Reasons to deny (empty: allow). `others`: the namespace's CryptoVLANs."""
    if operation == "DELETE" or obj is None:
        return []
    name, annotations = _names(obj)
    recorded: str | None = None
    old_annotations: Mapping[str, str] = {}
    if operation == "UPDATE" and old is not None:
        old_name, old_annotations = _names(old)
        recorded = old_annotations.get(specs.LABEL_ANNOTATION)
        if recorded is None:
            old_spec, _ = specs.parse_cryptovlan(old.get("spec"))
            if old_spec is not None:
                recorded = render.effective_label(old_name or name, old_spec)
    messages: list[str] = []
    if not _unchanged_update(operation, obj, old):
        spec, problems = specs.check_cryptovlan(
            name=name, raw=obj.get("spec"), recorded_label=recorded
        )
        messages = [m for _, m in problems]
        if spec is not None:
            messages += interface_collisions(name=name, spec=spec, others=others)
    before = old_annotations.get(specs.AUTHORITY_ANNOTATION)
    if before is not None and annotations.get(specs.AUTHORITY_ANNOTATION) != before:
        messages.append(
            f"annotation {specs.AUTHORITY_ANNOTATION} is immutable: it names the VLAN "
            "authority key the VLAN-ID derives from"
        )
    return messages


def validate_mvlan(
    *, operation: str, obj: Mapping[str, Any] | None, old: Mapping[str, Any] | None
) -> list[str]:
    if operation == "DELETE" or obj is None or _unchanged_update(operation, obj, old):
        return []
    _, problems = specs.check_mvlan(obj.get("spec"))
    return [m for _, m in problems]


def _unchanged_update(
    operation: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None
) -> bool:
    """Metadata-only updates (finalizers, annotations, deletion) never fail on the spec:
    an object admitted before the webhook existed must still be deletable."""
    return operation == "UPDATE" and old is not None and old.get("spec") == obj.get("spec")


def response(
    request: Mapping[str, Any],
    *,
    denials: Sequence[str] = (),
    patch: Sequence[JsonObj] = (),
    warnings: Sequence[str] = (),
) -> JsonObj:
    """An admission.k8s.io/v1 AdmissionReview answering `request`."""
    answer: JsonObj = {"uid": request.get("uid", ""), "allowed": not denials}
    if denials:
        answer["status"] = {"code": 422, "reason": "Invalid", "message": "; ".join(denials)}
    if patch:
        answer["patchType"] = "JSONPatch"
        answer["patch"] = base64.b64encode(json.dumps(list(patch)).encode()).decode()
    if warnings:
        answer["warnings"] = list(warnings)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}
