"""Fixtures for the Helm chart tests: load the chart once, render it with Helm's own engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml  # type: ignore[import-untyped]
from installed import Installed, install
from kube.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "peertap"
RELEASE = "pt"
NAMESPACE = "peertap-system"

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: helm.Chart) -> Render:
    """Render the chart as `helm install pt helm/peertap -n peertap-system` would, offline."""

    def _render(values: dict[str, Any] | None = None) -> list[Manifest]:
        files = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
        manifests: list[Manifest] = []
        for path, text in sorted(files.items()):
            if path.endswith("NOTES.txt"):
                continue
            manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
        return manifests

    return _render


@pytest.fixture
def installed(control_plane: ControlPlane) -> Iterator[Installed]:
    """The chart installed with real Helm into the session's control plane, wiped around."""
    control_plane.wipe()
    try:
        with install(control_plane) as release:
            yield release
    finally:
        control_plane.wipe()
