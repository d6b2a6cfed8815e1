"""The Dockerfiles copy only existing files, all the wheel build needs, and agree with the chart."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO / "deploy" / "docker").glob("*.Dockerfile"))
CONTEXT_EXCLUDED_ALWAYS = (".git",)


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest of line) pairs with line continuations joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, f"{dockerfile.name} ends inside a continued line"
    out = []
    for text in logical:
        keyword, _, rest = text.partition(" ")
        out.append((keyword.upper(), rest))
    return out


def _context_sources(dockerfile: Path) -> list[str]:
    """Sources COPY/ADD take from the build context (not from other stages)."""
    sources = []
    for keyword, rest in _instructions(dockerfile):
        if keyword not in ("COPY", "ADD"):
            continue
        args = shlex.split(rest)
        if any(a.startswith("--from=") for a in args):
            continue
        plain = [a for a in args if not a.startswith("--")]
        sources += plain[:-1]
    return sources


def _dockerignore_excludes(relative: str) -> bool:
    """Whether .dockerignore keeps a path out of the build context (last match wins)."""
    excluded = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/"))
            for p in prefixes
        ):
            excluded = not negate
    return excluded


def _files_under(source: str) -> list[Path]:
    matches = sorted(REPO.glob(source.rstrip("/")))
    files: list[Path] = []
    for match in matches:
        files += [match] if match.is_file() else sorted(p for p in match.rglob("*") if p.is_file())
    return files


def test_both_images_have_a_dockerfile() -> None:
    assert [d.name for d in DOCKERFILES] == ["operator.Dockerfile", "sidecar.Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.name)
def test_every_copied_path_exists_and_is_in_the_build_context(dockerfile: Path) -> None:
    sources = _context_sources(dockerfile)
    assert sources, "copies nothing from the repository"
    for source in sources:
        assert not source.startswith(("/", "..")), f"{source} is outside the context"
        files = _files_under(source)
        assert files, f"{dockerfile.name} copies {source}, which does not exist in the repo"
        kept = [f for f in files if not _dockerignore_excludes(str(f.relative_to(REPO)))]
        assert kept, f"{source} is excluded by .dockerignore"
        assert not source.startswith(CONTEXT_EXCLUDED_ALWAYS)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.name)
def test_image_copies_pyproject_and_every_mapped_package(dockerfile: Path) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_dirs = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    copied = {s.rstrip("/") for s in _context_sources(dockerfile)}
    assert "pyproject.toml" in copied
    assert package_dirs <= copied, f"missing packages {package_dirs - copied}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.name)
def test_images_start_from_python_3_11_slim(dockerfile: Path) -> None:
    instructions = _instructions(dockerfile)
    args = dict(rest.split("=", 1) for kw, rest in instructions if kw == "ARG" and "=" in rest)
    bases = [rest.split()[0] for kw, rest in instructions if kw == "FROM"]
    resolved = {re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], b) for b in bases}
    assert resolved == {"python:3.11-slim"}


def test_operator_image_runs_as_the_user_the_chart_expects() -> None:
    instructions = _instructions(REPO / "deploy" / "docker" / "operator.Dockerfile")
    (user,) = [rest for kw, rest in instructions if kw == "USER"]
    uid, _, gid = user.partition(":")
    values = yaml.safe_load((REPO / "helm" / "peertap" / "values.yaml").read_text())
    pod = values["operator"]["podSecurityContext"]
    assert (int(uid), int(gid)) == (pod["runAsUser"], pod["runAsGroup"])
    entrypoints = [json.loads(rest) for kw, rest in instructions if kw == "ENTRYPOINT"]
    assert entrypoints == [["python", "-m", "peertap.operator"]]


def test_sidecar_image_has_iproute2_and_runs_the_node_config() -> None:
    instructions = _instructions(REPO / "deploy" / "docker" / "sidecar.Dockerfile")
    runs = [rest for kw, rest in instructions if kw == "RUN"]
    assert any(re.search(r"apt-get install .*\biproute2\b", run) for run in runs)
    command = [json.loads(rest) for kw, rest in instructions if kw in ("ENTRYPOINT", "CMD")]
    assert command == [["peertap"], ["run", "--config", "/etc/peertap/node.json"]]
