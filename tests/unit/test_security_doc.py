"""docs/security.md names, for every claim, the test that proves it: each named test
must exist, so the threat model cannot point at tests that were renamed or removed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]]*\])?`")
CONT = re.compile(r"`::(\w+)(?:\[[^\]]*\])?`")


def referenced() -> list[tuple[str, str]]:
    refs: list[tuple[str, str]] = []
    current = ""
    for token in re.finditer(r"`[^`]+`", (ROOT / "docs/security.md").read_text()):
        text = token.group(0)
        if m := REF.fullmatch(text):
            current = m.group(1)
            refs.append((current, m.group(2)))
        elif (m := CONT.fullmatch(text)) and current:
            refs.append((current, m.group(1)))
    return refs


def test_every_test_the_threat_model_names_exists() -> None:
    refs = referenced()
    assert len(refs) > 30
    missing = [
        f"{path}::{name}"
        for path, name in refs
        if not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M)
    ]
    assert missing == []
