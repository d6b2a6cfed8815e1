"""`python -m peertap.sidecar.lab up|down|exec|status`: the lab CLI on its own."""

from __future__ import annotations

import argparse
import sys

from .cli import add_lab_parser, run_lab_command


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m peertap.sidecar.lab")
    sub = parser.add_subparsers(dest="command", required=True)
    add_lab_parser(sub)
    return run_lab_command(parser.parse_args(["lab", *sys.argv[1:]]))


if __name__ == "__main__":
    raise SystemExit(main())
