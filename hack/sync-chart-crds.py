#!/usr/bin/env python3
"""Copy the repository's CRDs (crds/*.yaml) into the Helm chart (helm/peertap/crds/).

crds/ is the source of truth (generated from the operator's models); the chart
ships byte-identical copies because Helm installs everything under a chart's
crds/ before its templates. Stale chart copies (files no longer in crds/) are
removed.

Usage: hack/sync-chart-crds.py          copy
       hack/sync-chart-crds.py --check  exit 1 when the chart's copies differ
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "crds"
CHART_CRDS = REPO / "helm" / "peertap" / "crds"


def _yaml_files(directory: Path) -> dict[str, bytes]:
    if not directory.is_dir():
        return {}
    return {path.name: path.read_bytes() for path in sorted(directory.glob("*.yaml"))}


def differences(*, source: Path = SOURCE, chart_crds: Path = CHART_CRDS) -> list[str]:
    """One line per file that is missing, extra or different in the chart."""
    wanted = _yaml_files(source)
    present = _yaml_files(chart_crds)
    problems: list[str] = []
    for name in sorted(wanted.keys() | present.keys()):
        if name not in present:
            problems.append(f"missing from chart: {name}")
        elif name not in wanted:
            problems.append(f"not in crds/: {name}")
        elif wanted[name] != present[name]:
            problems.append(f"differs: {name}")
    return problems


def sync(*, source: Path = SOURCE, chart_crds: Path = CHART_CRDS) -> list[str]:
    """Make the chart's copies equal to the source; returns what changed."""
    changed = differences(source=source, chart_crds=chart_crds)
    wanted = _yaml_files(source)
    chart_crds.mkdir(parents=True, exist_ok=True)
    for stale in set(_yaml_files(chart_crds)) - set(wanted):
        (chart_crds / stale).unlink()
    for name, data in wanted.items():
        (chart_crds / name).write_bytes(data)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="only report differences; exit 1 if any"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = differences()
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run hack/sync-chart-crds.py to update helm/peertap/crds/", file=sys.stderr)
            return 1
        return 0
    for line in sync():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
