"""The PeerTap resources shown in docs/operations.md and the chart's NOTES are valid for the CRDs.

Each manifest is checked against its CRD's openAPIV3Schema with unknown fields
rejected, as `kubectl apply` (strict field validation) does.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "operations.md"
CHART_CRDS = REPO / "helm" / "peertap" / "crds"
PEERTAP_API = "peertap.io/v1alpha1"

Manifest = dict[str, Any]


def _closed(schema: Any) -> Any:
    """The schema with every object that lists properties closed to other keys."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _closed(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _crd_validators() -> dict[str, Any]:
    validators = {}
    for path in sorted(CHART_CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            schema = _closed(version["schema"]["openAPIV3Schema"])
            kind = crd["spec"]["names"]["kind"]
            validators[kind] = jsonschema.Draft7Validator(schema)
    return validators


def _manifests(text: str) -> list[Manifest]:
    """PeerTap resources in ```yaml blocks and <<'YAML' heredocs of a document."""
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    blocks += re.findall(r"<<'YAML'\n(.*?)\n\s*YAML\n", text, flags=re.S)
    found = []
    for block in blocks:
        for doc in yaml.safe_load_all(textwrap.dedent(block)):
            if isinstance(doc, dict) and doc.get("apiVersion") == PEERTAP_API:
                found.append(doc)
    return found


def _notes() -> str:
    with helm.Chart.load(REPO / "helm" / "peertap") as chart:
        files = chart.render({}, name="pt", namespace="peertap-system", is_install=True)
    return files["peertap/templates/NOTES.txt"]


SOURCES: dict[str, Callable[[], str]] = {
    "docs/operations.md": DOCS.read_text,
    "NOTES.txt": _notes,
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_shown_peertap_resources_are_valid_for_the_crds(source: str) -> None:
    validators = _crd_validators()
    manifests = _manifests(SOURCES[source]())
    assert manifests, f"{source} shows no PeerTap resources"
    for manifest in manifests:
        errors = list(validators[manifest["kind"]].iter_errors(manifest))
        where = f"{source}: {manifest['kind']}/{manifest['metadata']['name']}"
        assert not errors, f"{where}: {[e.message for e in errors]}"


def test_a_misspelled_field_fails_the_crd_check() -> None:
    validators = _crd_validators()
    bad = {
        "apiVersion": PEERTAP_API,
        "kind": "MVLAN",
        "metadata": {"name": "campus"},
        "spec": {"relayz": {"replicas": 1}},
    }
    assert list(validators["MVLAN"].iter_errors(bad))
