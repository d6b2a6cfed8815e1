"""The chart ships byte-identical copies of the repository's CRDs (hack/sync-chart-crds.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import helm_python as helm
import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "sync-chart-crds.py"
EXPECTED_CRDS = {
    "cryptovlans.peertap.io",
    "mvlans.peertap.io",
    # kopf's peering resources: the operator replicas elect one leader through them.
    "clusterkopfpeerings.kopf.dev",
    "kopfpeerings.kopf.dev",
}


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_chart_crds", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_repository_has_both_crds_and_the_peering_ones() -> None:
    assert sorted(p.name for p in (REPO / "crds").glob("*.yaml")) == [
        "cryptovlan.yaml",
        "kopf-clusterpeering.yaml",
        "kopf-peering.yaml",
        "mvlan.yaml",
    ]


def test_sync_copies_new_and_changed_files_and_removes_stale_ones(tmp_path: Path) -> None:
    script = _load_script()
    source, chart = tmp_path / "crds", tmp_path / "chart-crds"
    source.mkdir()
    (source / "a.yaml").write_text("kind: A\n")
    (source / "b.yaml").write_text("kind: B\n")
    chart.mkdir()
    (chart / "b.yaml").write_text("kind: old\n")
    (chart / "gone.yaml").write_text("kind: Gone\n")

    assert script.differences(source=source, chart_crds=chart) == [
        "missing from chart: a.yaml",
        "differs: b.yaml",
        "not in crds/: gone.yaml",
    ]
    script.sync(source=source, chart_crds=chart)
    assert script.differences(source=source, chart_crds=chart) == []
    assert sorted(p.name for p in chart.iterdir()) == ["a.yaml", "b.yaml"]
    assert (chart / "b.yaml").read_text() == "kind: B\n"


def test_chart_crds_equal_the_repository_crds() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_helm_loads_both_peertap_crds_from_the_chart() -> None:
    with helm.Chart.load(REPO / "helm" / "peertap") as chart:
        names = {
            doc["metadata"]["name"]
            for crd in chart.crds
            for doc in yaml.safe_load_all(crd["data"])
            if doc and doc.get("kind") == "CustomResourceDefinition"
        }
    assert names == EXPECTED_CRDS
