"""Layering of peertap.operator: decisions stay pure, one module talks to the API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

OPERATOR = Path(__file__).resolve().parents[2] / "operator"
PURE = [
    "admission",
    "cluster_view",
    "conditions",
    "credentials",
    "crdgen",
    "ipam",
    "membership",
    "models",
    "render",
    "selectors",
    "specs",
]
IO_MODULES = {"kopf", "kubernetes", "aiohttp", "urllib3", "prometheus_client"}
OUR_IO = {"kube", "handlers", "servers", "reconcile", "relay", "webhook_tls", "metrics"}


def _imports(module: str) -> set[str]:
    tree = ast.parse((OPERATOR / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.module is None:  # from . import a, b
                names |= {alias.name for alias in node.names}
            else:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", PURE)
def test_decision_modules_do_no_io(module: str) -> None:
    imported = _imports(module)
    assert not imported & IO_MODULES, f"{module} imports {imported & IO_MODULES}"
    assert not imported & OUR_IO, f"{module} imports {imported & OUR_IO}"


def test_only_kube_imports_the_kubernetes_client() -> None:
    users = sorted(p.stem for p in OPERATOR.glob("*.py") if "kubernetes" in _imports(p.stem))
    assert users == ["kube"]
