"""values.schema.json is current, closed at every level, and accepts exactly the valid values."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "peertap"
SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())

# Free-form by Helm's design: values shared with parent charts.
OPEN_OBJECTS = {"global"}

BAD_VALUES_FILES = {
    "wrong-type": "operator:\n  replicas: one\n",
    "unknown-key": "webhook:\n  failurPolicy: Fail\n",
    "unknown-top-level-key": "sidecarImage: x\n",
    "wrong-enum": "metrics:\n  service:\n    type: Ingress\n",
    "string-for-list": "watchNamespaces: team-a\n",
    "bad-quantity-key-in-resources": "operator:\n  resources:\n    request:\n      cpu: 1\n",
}


def _validator() -> Any:
    return jsonschema.Draft202012Validator(SCHEMA)


def _objects(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node that describes an object, with a readable path."""
    if isinstance(node, dict):
        types = node.get("type")
        if types == "object" or (isinstance(types, list) and "object" in types):
            yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _objects(item, f"{path}/{index}")


def test_values_schema_is_generated_from_the_current_model() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "hack" / "gen-values-schema.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_values_schema_is_a_valid_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_object_in_the_schema_rejects_unknown_keys() -> None:
    open_objects = []
    for path, node in _objects(SCHEMA):
        if path.rsplit("/", 1)[-1] in OPEN_OBJECTS:
            continue
        # false closes a record; a schema (labels, resource quantities) closes a map.
        if node.get("additionalProperties", True) is True:
            open_objects.append(path)
    assert open_objects == []


def test_values_yaml_validates_against_the_schema() -> None:
    _validator().validate(yaml.safe_load((CHART_DIR / "values.yaml").read_text()))


def test_values_yaml_sets_every_key_the_schema_knows() -> None:
    """A key in the schema but missing from values.yaml would be undocumented."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

    def missing(schema: dict[str, Any], data: dict[str, Any], prefix: str) -> list[str]:
        found = []
        for key, sub in schema.get("properties", {}).items():
            if key in OPEN_OBJECTS:
                continue
            if key not in data:
                found.append(prefix + key)
                continue
            ref = sub.get("$ref", "")
            if ref.startswith("#/$defs/") and not ref.startswith("#/$defs/io.k8s."):
                found += missing(
                    SCHEMA["$defs"][ref.removeprefix("#/$defs/")], data[key], key + "."
                )
        return found

    assert missing(SCHEMA, values, "") == []


@pytest.mark.parametrize("name", sorted(BAD_VALUES_FILES))
def test_bad_values_file_is_rejected_by_the_schema_and_by_helm(
    chart: helm.Chart, tmp_path: Path, name: str
) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(BAD_VALUES_FILES[name])
    user_values = helm.values_from_yaml(values_file.read_text())
    merged = chart.merge_values(user_values)
    assert list(_validator().iter_errors(merged)), "schema accepted bad values"
    with pytest.raises(helm.HelmValuesError):
        chart.render(user_values, name="pt", namespace="peertap-system", is_install=True)


def test_a_good_values_file_passes_both_checks(chart: helm.Chart) -> None:
    user_values = helm.values_from_yaml(
        "watchNamespaces: [team-a]\n"
        "operator:\n  replicas: 0\n  resources:\n    limits:\n      cpu: 500m\n"
        "webhook:\n  failurePolicy: Fail\n"
        "metrics:\n  serviceMonitor:\n    enabled: true\n    interval: 1m30s\n"
    )
    _validator().validate(chart.merge_values(user_values))
    chart.validate_schema(chart.merge_values(user_values))
    assert chart.render(user_values, name="pt", namespace="peertap-system", is_install=True)
