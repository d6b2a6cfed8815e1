"""The CRDs in crds/ are what the models generate, and the examples satisfy their schemas."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from peertap.operator import crdgen, rbac_needs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "examples"


def _schema(crd_file: str) -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / crd_file).read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def test_committed_crds_equal_the_generated_ones() -> None:
    for name, text in crdgen.rendered().items():
        assert (ROOT / "crds" / name).read_text() == text, f"crds/{name} is stale"


def test_gen_crds_check_mode_passes_on_the_tree_and_fails_on_a_stale_copy(tmp_path: Path) -> None:
    script = str(ROOT / "hack" / "gen-crds.py")
    ok = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    for name, text in crdgen.rendered().items():
        (tmp_path / name).write_text(text.replace("VLAN-ID", "VLAN"))
    stale = subprocess.run(
        [sys.executable, script, "--check", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert stale.returncode == 1
    assert "out of date" in stale.stderr


@pytest.mark.parametrize(
    ("example", "crd_file"), [("cryptovlan.yaml", "cryptovlan.yaml"), ("mvlan.yaml", "mvlan.yaml")]
)
def test_examples_validate_against_their_crd_schema(example: str, crd_file: str) -> None:
    obj = yaml.safe_load((EXAMPLES / example).read_text())
    jsonschema.validate(obj, _schema(crd_file))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "security"), "plaintext"),
        (("spec", "interface", "mode"), "tup"),
        (("spec", "interface", "mtu"), 100),
        (("spec", "interface", "name"), "a-name-that-is-far-too-long"),
        (("spec", "interface", "ipam", "subnet"), "not-a-cidr"),
        (("spec", "rekeyInterval"), "an hour"),
        (("spec", "bootstrapPeers"), ["/ip4/1.2.3.4/tcp/4001"]),
        (("spec", "transports"), ["quic"]),
    ],
)
def test_cryptovlan_schema_rejects_bad_fields(path: tuple[str, ...], value: Any) -> None:
    obj = yaml.safe_load((EXAMPLES / "cryptovlan.yaml").read_text())
    target = obj
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, _schema("cryptovlan.yaml"))


def test_mvlan_schema_rejects_an_unknown_service_type() -> None:
    obj = yaml.safe_load((EXAMPLES / "mvlan.yaml").read_text())
    bad = copy.deepcopy(obj)
    bad["spec"]["relays"]["serviceType"] = "ExternalName"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, _schema("mvlan.yaml"))


def test_crds_are_namespaced_with_status_subresource_short_names_and_columns() -> None:
    for crd_file, short in (("cryptovlan.yaml", "cvlan"), ("mvlan.yaml", "mvlan")):
        crd = yaml.safe_load((ROOT / "crds" / crd_file).read_text())
        assert crd["spec"]["scope"] == "Namespaced"
        assert crd["spec"]["names"]["shortNames"] == [short]
        (version,) = crd["spec"]["versions"]
        assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    cvlan = yaml.safe_load((ROOT / "crds" / "cryptovlan.yaml").read_text())
    columns = [c["name"] for c in cvlan["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["VLAN-ID", "Members", "Ready", "Age"]


def test_rbac_rules_are_policy_rules_naming_groups_resources_and_verbs() -> None:
    for rule in rbac_needs.RBAC_RULES:
        assert set(rule) == {"apiGroups", "resources", "verbs"}
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
    granted = {
        (g, r, v)
        for rule in rbac_needs.RBAC_RULES
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    for need in [
        ("peertap.io", "cryptovlans/status", "patch"),
        ("", "secrets", "create"),
        ("", "secrets", "delete"),
        ("", "pods", "watch"),
        ("apps", "deployments", "patch"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch"),
    ]:
        assert need in granted, need
    assert ("", "pods", "patch") not in granted


def _walk(schema: dict[str, Any], where: str) -> list[str]:
    problems = []
    for banned in ("$ref", "anyOf", "oneOf", "allOf", "title"):
        if banned in schema:
            problems.append(f"{where}: {banned}")
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{where}: no type")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{where}: properties with additionalProperties")
    if "default" in schema:
        try:
            jsonschema.validate(schema["default"], schema)
        except jsonschema.ValidationError as err:
            problems.append(f"{where}: default does not validate: {err.message}")
    for name, sub in schema.get("properties", {}).items():
        problems += _walk(sub, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        problems += _walk(schema["items"], f"{where}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += _walk(schema["additionalProperties"], f"{where}{{}}")
    return problems


@pytest.mark.parametrize("crd_file", ["cryptovlan.yaml", "mvlan.yaml"])
def test_crd_schemas_are_structural_with_valid_defaults(crd_file: str) -> None:
    assert _walk(_schema(crd_file), "") == []
