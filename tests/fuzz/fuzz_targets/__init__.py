"""Fuzz targets for every parser that takes bytes from a peer.

Each target is a module of this package with a docstring saying what it feeds and
what it asserts, and three names:

    NAME        the target's name (`hack/fuzz.py --target NAME`)
    seeds()     valid inputs built with the project's own encoders (the seed corpus)
    check(data) run one input; it catches the parser's documented error type and
                lets anything else escape, so any exception out of `check` is a bug

Targets are imported lazily (`load`) so that the fuzzer can instrument the project's
modules as the target imports them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

TARGETS = (
    "trunk_records",
    "wire_packets",
    "intro_admission",
    "node_credentials",
    "announce_signed",
    "frame_open",
    "fragments",
    "control_bodies",
    "control_parts",
    "mls_message",
    "mls_structs",
    "mls_group",
    "mls_insider",
    "private_vlan",
    "credentials",
    "revocation_lists",
    "datagram_records",
)


@dataclass(frozen=True)
class Target:
    name: str
    doc: str
    seeds: Callable[[], list[bytes]]
    check: Callable[[bytes], None]


def load(name: str) -> Target:
    if name not in TARGETS:
        raise KeyError(f"unknown fuzz target {name!r}; targets: {', '.join(TARGETS)}")
    module = importlib.import_module(f"{__name__}.{name}")
    return Target(module.NAME, (module.__doc__ or "").strip(), module.seeds, module.check)
