"""Build the CustomResourceDefinitions from the pydantic models in `models`.

Kubernetes wants a structural schema: no `$ref`, no `anyOf` with null, a `type`
everywhere, defaults written out. This module turns pydantic's JSON Schema into
that shape; `hack/gen-crds.py` writes the result to `crds/` and checks it.
"""

from __future__ import annotations

from typing import Any

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel

from . import models

JsonObj = dict[str, Any]

_DROP = {"title", "additionalProperties"}


def _resolve(schema: JsonObj, defs: dict[str, JsonObj]) -> JsonObj:
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {schema['anyOf']!r} in a structural schema")
        merged = {**options[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
        if merged.get("default", 0) is None:
            del merged["default"]
        return _resolve(merged, defs)
    out: JsonObj = {}
    for key, value in schema.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _resolve(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _resolve(value, defs)
        else:
            out[key] = value
    if schema.get("type") == "object" and "properties" not in schema:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = _resolve(extra, defs)
    return out


def _add_defaults(schema: JsonObj, model: type[BaseModel]) -> None:
    """Write out defaults pydantic leaves implicit (default factories)."""
    props = schema.get("properties", {})
    for name, field in model.model_fields.items():
        alias = field.alias or name
        prop = props.get(alias)
        if prop is None:
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _add_defaults(prop, annotation)
        if field.is_required() or "default" in prop:
            continue
        value = field.get_default(call_default_factory=True)
        if value is None:
            continue
        if isinstance(value, BaseModel):
            prop["default"] = {}
        else:
            prop["default"] = value
    for name, field in model.model_fields.items():
        item_type = getattr(field.annotation, "__args__", ())
        prop = props.get(field.alias or name, {})
        for arg in item_type:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                if "items" in prop:
                    _add_defaults(prop["items"], arg)
                elif prop.get("type") == "object":
                    _add_defaults(prop, arg)


def structural_schema(model: type[BaseModel]) -> JsonObj:
    raw = model.model_json_schema(by_alias=True)
    defs = raw.pop("$defs", {})
    schema = _resolve(raw, defs)
    _add_defaults(schema, model)
    return schema


def _crd(
    *,
    kind: str,
    plural: str,
    short: str,
    spec: type[BaseModel],
    status: type[BaseModel],
    columns: list[JsonObj],
) -> JsonObj:
    spec_schema = structural_schema(spec)
    spec_schema["description"] = f"Desired state of the {kind}."
    status_schema = structural_schema(status)
    status_schema["description"] = f"Observed state of the {kind}, written by the operator."
    # kopf keeps its handler progress under status; keep it without listing it.
    status_schema["x-kubernetes-preserve-unknown-fields"] = True
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{models.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "peertap"},
        },
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["peertap"],
            },
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": {**spec_schema, "default": {}},
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def cryptovlan_crd() -> JsonObj:
    return _crd(
        kind="CryptoVLAN",
        plural="cryptovlans",
        short="cvlan",
        spec=models.CryptoVLANSpec,
        status=models.CryptoVLANStatus,
        columns=[
            {"name": "VLAN-ID", "type": "string", "jsonPath": ".status.vlanId"},
            {"name": "Members", "type": "integer", "jsonPath": ".status.memberCount"},
            {
                "name": "Ready",
                "type": "string",
                "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            },
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )


def mvlan_crd() -> JsonObj:
    return _crd(
        kind="MVLAN",
        plural="mvlans",
        short="mvlan",
        spec=models.MVLANSpec,
        status=models.MVLANStatus,
        columns=[
            {"name": "Service", "type": "string", "jsonPath": ".spec.relays.serviceType"},
            {"name": "Relays", "type": "string", "jsonPath": ".status.relayAddresses[0]"},
            {
                "name": "Ready",
                "type": "string",
                "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            },
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )


def peering_crd(*, cluster: bool) -> JsonObj:
    """kopf's peering resource (kopf.dev/v1): the operator replicas record themselves in
    one object and all but the highest-priority one pause (leader election)."""
    kind = "ClusterKopfPeering" if cluster else "KopfPeering"
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.kopf.dev",
            "labels": {"app.kubernetes.io/part-of": "peertap"},
        },
        "spec": {
            "group": "kopf.dev",
            "scope": "Cluster" if cluster else "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


HEADER = "# Generated by hack/gen-crds.py from peertap.operator.models; do not edit.\n"
PEERING_HEADER = "# Generated by hack/gen-crds.py (kopf's peering resources); do not edit.\n"


def rendered() -> dict[str, str]:
    """File name (under crds/) -> YAML text."""
    out = {}
    for name, crd in (("cryptovlan.yaml", cryptovlan_crd()), ("mvlan.yaml", mvlan_crd())):
        out[name] = HEADER + yaml.safe_dump(crd, sort_keys=False, width=100)
    for name, cluster in (("kopf-clusterpeering.yaml", True), ("kopf-peering.yaml", False)):
        crd = peering_crd(cluster=cluster)
        out[name] = PEERING_HEADER + yaml.safe_dump(crd, sort_keys=False, width=100)
    return out
