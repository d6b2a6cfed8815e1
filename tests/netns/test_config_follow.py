"""A running node follows its config file: a new bootstrap list is dialed at once and its
peers admitted (a Kubernetes member whose MVLAN relays got addresses after it started),
a broken file or
a change that needs a restart changes nothing and is counted. Real `peertap run`
processes in network namespaces."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from overlay_checks import pings, wait_until

from peertap.sidecar.lab import Lab, topology

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def rewrite(path: Path, data: dict[str, Any] | str) -> None:
    """Replace the file at once, as a projected ConfigMap volume does."""
    tmp = path.with_suffix(".new")
    tmp.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    os.replace(tmp, path)


def counters(lab: Lab, pod: str) -> dict[str, dict[str, int]]:
    status: dict[str, Any] = lab.status(pod)
    return status["counters"]


def test_a_node_dials_the_bootstrap_peers_written_to_its_config_while_running(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(topology("relay"))
    lab.wait_ready(timeout=30)
    path = lab.config_path("b")
    # b admits no one but its bootstrap peers (it still presents its own credential to
    # the relay): the relay's trunk comes up only if a new bootstrap list pins it.
    original = json.loads(path.read_text())
    original["admission"] = {**original["admission"], "mode": "peers", "authorities": []}
    assert original["bootstrap"], "the relay topology gives b a bootstrap peer"

    # b starts knowing no peer: it cannot reach a.
    lab.stop_node("b")
    rewrite(path, {**original, "bootstrap": []})
    lab.start_node("b")
    lab.wait_ready(timeout=30, pods=["b"])
    assert lab.status("b")["peers"] == []
    assert not pings(lab, "b", "a")

    # A file that is not valid changes nothing and is counted.
    rewrite(path, "{ not json")
    wait_until(
        "the broken file counted",
        lambda: counters(lab, "b")["drops"].get("config_reload_failed", 0) >= 1,
    )
    assert lab.node_pid("b") is not None

    # The relay's address arrives in the file: b dials it, without a restart.
    rewrite(path, original)
    wait_until("b's trunk to the relay", lambda: len(lab.status("b")["peers"]) == 1)
    wait_until("a ping from b to a", lambda: pings(lab, "b", "a"))
    assert counters(lab, "b")["events"].get("config_reloads", 0) >= 1

    # A change the running node cannot take is reported, and traffic goes on.
    changed = json.loads(json.dumps(original))
    changed.setdefault("limits", {})["clock_skew_s"] = 61
    rewrite(path, changed)
    wait_until(
        "the restart-needed change counted",
        lambda: counters(lab, "b")["events"].get("config_restart_needed", 0) >= 1,
    )
    assert pings(lab, "b", "a")
