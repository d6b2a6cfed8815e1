"""hack/kind-e2e.sh parses, fails fast, and points at files that exist (it needs Docker to run)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "kind-e2e.sh"


def test_script_is_executable_bash_that_parses() -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    result = subprocess.run(
        ["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_script_stops_on_the_first_error() -> None:
    commands = [
        line.strip()
        for line in SCRIPT.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[0] == "set -euo pipefail"


def test_every_repository_path_the_script_uses_exists() -> None:
    text = SCRIPT.read_text()
    paths = re.findall(r"\$\{REPO\}/([\w./-]+)", text)
    assert {"deploy/docker/operator.Dockerfile", "deploy/docker/sidecar.Dockerfile"} <= set(paths)
    assert "helm/peertap" in paths
    for relative in paths:
        assert (REPO / relative).exists(), f"kind-e2e.sh uses missing {relative}"


def test_script_overrides_only_values_the_chart_defines() -> None:
    values = yaml.safe_load((REPO / "helm" / "peertap" / "values.yaml").read_text())
    for key in re.findall(r"--set ([\w.]+)=", SCRIPT.read_text()):
        node = values
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"--set {key} is not a chart value"
            node = node[part]
