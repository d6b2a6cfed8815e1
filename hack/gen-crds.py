#!/usr/bin/env python3
"""Write crds/*.yaml from the operator's pydantic models; --check fails when they drift."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peertap.operator import crdgen

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=ROOT / "crds", help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name, text in crdgen.rendered().items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date (run hack/gen-crds.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
