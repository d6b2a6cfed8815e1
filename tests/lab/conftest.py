"""Lab tests run nodes as the stand-in daemon (standin_node.py) via PEERTAP_LAB_NODE_CMD."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
from peertap.sidecar.lab import NODE_CMD_ENV

STANDIN = Path(__file__).with_name("standin_node.py")


@pytest.fixture(autouse=True)
def standin_node(monkeypatch: pytest.MonkeyPatch) -> str:
    command = shlex.join([sys.executable, str(STANDIN), "run"])
    monkeypatch.setenv(NODE_CMD_ENV, command)
    return command
