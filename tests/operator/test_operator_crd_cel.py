"""The CRDs' CEL validation rules, evaluated with a CEL interpreter on the objects the API
server would hand them: they hold with the admission webhook down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _rules(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule
    for name, sub in (schema.get("properties") or {}).items():
        yield from _rules(sub, f"{path}.{name}")


def rules(crd_file: str) -> dict[str, list[dict[str, Any]]]:
    crd = yaml.safe_load((ROOT / "crds" / crd_file).read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    out: dict[str, list[dict[str, Any]]] = {}
    for path, rule in _rules(schema, ""):
        out.setdefault(path, []).append(rule)
    return out


def failures(
    crd_file: str, path: str, value: dict[str, Any], old: dict[str, Any] | None = None
) -> list[str]:
    """Messages of the rules at `path` that `value` breaks (transition rules need `old`)."""
    env = celpy.Environment()
    out = []
    for rule in rules(crd_file)[path]:
        uses_old = "oldSelf" in rule["rule"]
        if uses_old and old is None:
            continue  # transition rules run on updates only
        activation = {"self": celpy.json_to_cel(value)}
        if uses_old:
            activation["oldSelf"] = celpy.json_to_cel(old)
        if not env.program(env.compile(rule["rule"])).evaluate(activation):
            out.append(rule["message"])
    return out


@pytest.mark.parametrize(
    ("spec", "old", "broken"),
    [
        ({"label": "lab"}, None, False),
        ({"label": "lab"}, {"label": "lab"}, False),
        ({"label": "other"}, {"label": "lab"}, True),
        ({}, {"label": "lab"}, True),
        ({"label": "lab"}, {}, True),
        ({}, {}, False),
    ],
)
def test_cryptovlan_label_is_immutable(
    spec: dict[str, Any], old: dict[str, Any] | None, broken: bool
) -> None:
    found = failures("cryptovlan.yaml", ".spec", spec, old)
    assert bool(found) == broken
    if broken:
        assert "immutable" in found[0]


@pytest.mark.parametrize(
    ("crd_file", "path"),
    [("cryptovlan.yaml", ".spec.relayPolicy.acl"), ("mvlan.yaml", ".spec.relays.acl")],
)
def test_acl_list_mode_needs_an_allow_pattern(crd_file: str, path: str) -> None:
    assert failures(crd_file, path, {"mode": "list", "allow": [], "deny": []})
    assert not failures(crd_file, path, {"mode": "list", "allow": ["ab*"], "deny": []})
    assert not failures(crd_file, path, {"mode": "restricted", "allow": [], "deny": []})
    # The schema's default ({}) is validated without field defaults: it must pass.
    assert not failures(crd_file, path, {})
    assert failures(crd_file, path, {"mode": "list"})


def test_every_string_and_list_a_rule_reads_is_bounded() -> None:
    """The API server refuses rules whose estimated cost is unbounded."""
    for crd_file in ("cryptovlan.yaml", "mvlan.yaml"):
        crd = yaml.safe_load((ROOT / "crds" / crd_file).read_text())
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, found in rules(crd_file).items():
            node = schema
            for part in path.strip(".").split("."):
                node = node["properties"][part]
            text = " ".join(r["rule"] for r in found)
            for name, prop in (node.get("properties") or {}).items():
                if f"self.{name}" not in text:
                    continue
                if prop.get("type") == "string":
                    assert "maxLength" in prop or "enum" in prop, f"{path}.{name}"
                if prop.get("type") == "array":
                    assert "maxItems" in prop, f"{path}.{name}"
