#!/usr/bin/env python3
"""Generate helm/peertap/values.schema.json from the pydantic model of the chart's values.

The model below is the single description of what values.yaml may contain. Fields
that pass a Kubernetes object straight into a manifest (affinity, tolerations,
resources, security contexts, env) use the Kubernetes 1.31 strict definitions
shipped with kubernetes-validate, so the schema rejects unknown keys at every
level, inside those objects too.

Usage: hack/gen-values-schema.py          write the schema
       hack/gen-values-schema.py --check  exit 1 when the committed schema is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

REPO = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO / "helm" / "peertap" / "values.schema.json"
KUBERNETES_VERSION = "1.31.0"
DEFS_PREFIX = "#/$defs/"
# pydantic resolves every $ref it emits, so Kubernetes references start as this
# marker and become $refs once the definitions are added.
K8S_MARKER = "x-peertap-kubernetes-definition"

Port = Annotated[int, Field(ge=1, le=65535)]
DnsLabel = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
Duration = Annotated[str, Field(pattern=r"^([0-9]+(ms|s|m|h))+$")]
FailurePolicy = Literal["Ignore", "Fail"]


def k8s(definition: str) -> WithJsonSchema:
    """Schema of one Kubernetes API object, e.g. io.k8s.api.core.v1.Affinity."""
    return WithJsonSchema({K8S_MARKER: definition})


def k8s_list(definition: str) -> WithJsonSchema:
    """Schema of a list of one Kubernetes API object."""
    return WithJsonSchema({"type": "array", "items": {K8S_MARKER: definition}})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Image(_Strict):
    repository: str = Field(min_length=1, description="Image repository.")
    tag: str = Field(default="", description="Image tag; empty means the chart's appVersion.")


class PulledImage(Image):
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = Field(default="IfNotPresent")


class PodDisruptionBudget(_Strict):
    enabled: bool = Field(default=True, description="Render it (with more than one replica).")
    minAvailable: int = Field(default=1, ge=0, description="Operator pods kept through drains.")


Resources = Annotated[dict[str, Any], k8s("io.k8s.api.core.v1.ResourceRequirements")]


class Operator(_Strict):
    image: PulledImage
    replicas: int = Field(
        default=2,
        ge=0,
        le=5,
        description="Operator pods; they elect one leader (kopf peering), all serve the "
        "webhooks; 0 pauses it.",
    )
    podDisruptionBudget: PodDisruptionBudget
    verbose: bool = Field(default=False, description="Pass --verbose to the operator.")
    extraEnv: Annotated[list[Any], k8s_list("io.k8s.api.core.v1.EnvVar")] = Field(
        default_factory=list, description="Extra environment variables for the operator."
    )
    resources: Annotated[dict[str, Any], k8s("io.k8s.api.core.v1.ResourceRequirements")] = Field(
        default_factory=dict
    )
    podSecurityContext: Annotated[dict[str, Any], k8s("io.k8s.api.core.v1.PodSecurityContext")] = (
        Field(default_factory=dict)
    )
    securityContext: Annotated[dict[str, Any], k8s("io.k8s.api.core.v1.SecurityContext")] = Field(
        default_factory=dict
    )
    podAnnotations: dict[str, str] = Field(default_factory=dict)
    podLabels: dict[str, str] = Field(default_factory=dict)
    priorityClassName: str = Field(default="")
    nodeSelector: dict[str, str] = Field(default_factory=dict)
    tolerations: Annotated[list[Any], k8s_list("io.k8s.api.core.v1.Toleration")] = Field(
        default_factory=list
    )
    affinity: Annotated[dict[str, Any], k8s("io.k8s.api.core.v1.Affinity")] = Field(
        default_factory=dict
    )


class Sidecar(_Strict):
    image: Image
    runAsUser: int = Field(
        default=65532,
        ge=0,
        le=2**31 - 1,
        description="User peertap runs as in the sidecar, with CAP_NET_ADMIN alone; 0: root.",
    )
    resources: Resources = Field(default_factory=dict, description="Each sidecar's resources.")


class Relay(_Strict):
    resources: Resources = Field(default_factory=dict, description="Each relay pod's resources.")


class ServiceAccount(_Strict):
    create: bool = Field(default=True)
    name: str = Field(default="", description="Defaults to the full name (or 'default').")
    annotations: dict[str, str] = Field(default_factory=dict)


class Rbac(_Strict):
    create: bool = Field(default=True)


class Webhook(_Strict):
    enabled: bool = Field(
        default=True, description="false: no webhooks, operator runs with --no-webhook."
    )
    port: Port = Field(default=9443, description="Container port of the HTTPS webhook server.")
    failurePolicy: FailurePolicy = Field(
        default="Ignore",
        description="Sidecar injection: Ignore lets pods start without a sidecar while the "
        "operator is down; Fail refuses labelled pods until it answers.",
    )
    validatingFailurePolicy: FailurePolicy = Field(
        default="Ignore",
        description="CryptoVLAN and MVLAN validation webhooks; with Ignore the CRDs' schema "
        "and CEL rules validate while the operator is down.",
    )
    matchAllPods: bool = Field(
        default=False,
        description="true: send every pod creation to the webhook, so spec.podSelector works "
        "without the peertap.io/vlans label; false: only labelled pods.",
    )
    timeoutSeconds: int = Field(default=10, ge=1, le=30)
    certSecretName: Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$")] = Field(
        default="", description="Secret holding the serving certificate."
    )


class Health(_Strict):
    port: Port = Field(default=8080, description="Container port for GET /healthz.")


class MetricsService(_Strict):
    enabled: bool = Field(default=True)
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(default="ClusterIP")
    port: Port = Field(default=9090)


class ServiceMonitor(_Strict):
    enabled: bool = Field(default=False, description="Needs the prometheus-operator CRDs.")
    interval: Duration = Field(default="30s")
    scrapeTimeout: Duration = Field(default="10s")
    labels: dict[str, str] = Field(default_factory=dict)


class Metrics(_Strict):
    port: Port = Field(default=9090, description="Container port for /metrics.")
    service: MetricsService
    serviceMonitor: ServiceMonitor


class Dashboards(_Strict):
    enabled: bool = Field(default=False, description="Render the Grafana dashboard ConfigMap.")
    label: str = Field(
        default="grafana_dashboard",
        pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        description="Label Grafana's dashboard sidecar selects on.",
    )
    labelValue: str = Field(default="1", max_length=63, description="Value of that label.")
    namespace: str = Field(default="", description="ConfigMap namespace; empty: the release's.")
    annotations: dict[str, str] = Field(default_factory=dict)


class Values(_Strict):
    """Values of the PeerTap Helm chart."""

    nameOverride: str = Field(default="")
    fullnameOverride: str = Field(default="")
    watchNamespaces: list[DnsLabel] = Field(
        default_factory=list,
        json_schema_extra={"uniqueItems": True},
        description="Namespaces to watch; empty: all namespaces (ClusterRole).",
    )
    imagePullSecrets: Annotated[list[Any], k8s_list("io.k8s.api.core.v1.LocalObjectReference")] = (
        Field(default_factory=list)
    )
    operator: Operator
    sidecar: Sidecar
    relay: Relay
    serviceAccount: ServiceAccount
    rbac: Rbac
    webhook: Webhook
    health: Health
    metrics: Metrics
    dashboards: Dashboards
    global_: dict[str, Any] = Field(
        default_factory=dict,
        alias="global",
        description="Helm's values shared with parent and sibling charts.",
    )


def _finish(node: Any) -> Any:
    """Turn markers into $refs and drop pydantic's titles (descriptions carry the meaning)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == K8S_MARKER:
                out["$ref"] = DEFS_PREFIX + value
            elif not (key == "title" and isinstance(value, str)):
                out[key] = _finish(value)
        return out
    if isinstance(node, list):
        return [_finish(item) for item in node]
    return node


def _refs(node: Any) -> set[str]:
    """Names of every #/$defs/ reference inside a schema fragment."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(DEFS_PREFIX):
            found.add(ref.removeprefix(DEFS_PREFIX))
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _kubernetes_definitions() -> dict[str, Any]:
    path = (
        resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / f"v{KUBERNETES_VERSION}-local-strict"
        / "_definitions.json"
    )
    definitions: dict[str, Any] = json.loads(path.read_text())["$defs"]
    return definitions


def build_schema() -> dict[str, Any]:
    """The complete values schema, Kubernetes definitions included."""
    schema: dict[str, Any] = _finish(Values.model_json_schema(by_alias=True))
    local: dict[str, Any] = schema.pop("$defs", {})
    kubernetes = _kubernetes_definitions()
    pending = _refs(schema) | _refs(local)
    while pending:
        name = pending.pop()
        if name in local:
            continue
        if name not in kubernetes:
            raise KeyError(f"schema references unknown definition {name!r}")
        local[name] = kubernetes[name]
        pending |= _refs(local[name])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "$defs": dict(sorted(local.items())),
    }


def render() -> str:
    return json.dumps(build_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="fail when the committed schema is not current"
    )
    args = parser.parse_args(argv)
    wanted = render()
    if args.check:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
        if current != wanted:
            print(
                f"{SCHEMA_PATH.relative_to(REPO)} is stale: run hack/gen-values-schema.py",
                file=sys.stderr,
            )
            return 1
        return 0
    SCHEMA_PATH.write_text(wanted)
    print(f"wrote {SCHEMA_PATH.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
