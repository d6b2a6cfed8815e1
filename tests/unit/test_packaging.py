"""Packaging: every package folder is listed in pyproject.toml, so a built wheel is complete."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPING = {"sidecar": "peertap.sidecar", "operator": "peertap.operator"}


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = set()
    for folder, name in MAPPING.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found == listed


def test_no_top_level_package_shadows_the_standard_library_or_libp2p() -> None:
    top = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert not top & {"operator", "examples", "docs", "interop", "stubs"} - set(MAPPING)


def test_every_data_file_in_a_package_is_shipped() -> None:
    """Files beside the code (web UI assets, py.typed) match a package-data pattern."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = tool["package-data"]
    missing = []
    for folder, name in MAPPING.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_dir() or path.suffix in {".py", ".pyc"} or "__pycache__" in path.parts:
                continue
            owner = path.parent
            while not (owner / "__init__.py").exists():
                owner = owner.parent
            package = ".".join([name, *owner.relative_to(ROOT / folder).parts])
            rel = path.relative_to(owner)
            if not any(rel.match(p) for p in patterns.get(package, [])):
                missing.append(str(path.relative_to(ROOT)))
    assert missing == []
