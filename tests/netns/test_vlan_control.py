"""VLAN selection at run time (api.vlan_control): real nodes in network namespaces leave
and join the lab VLAN through their loopback HTTP API, and the overlay follows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from peertap.sidecar.lab import Lab, topology

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def wait_until(what: str, check: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def pings(lab: Lab, src: str, dst: str) -> bool:
    argv = ["ping", "-c", "1", "-W", "1", lab.overlay_address(dst)]
    return lab.exec(src, argv, capture_output=True).returncode == 0


def has_link(lab: Lab, pod: str, name: str = "pt-lab") -> bool:
    return lab.exec(pod, ["ip", "link", "show", name], capture_output=True).returncode == 0


def tokens_of(lab: Lab, pod: str, origin: str) -> int | None:
    """Tokens `pod` routes towards `origin` on the lab VLAN (None: it knows no route)."""
    status: dict[str, Any] = lab.status(pod)
    found = [o["tokens"] for o in status["origins"] if o["node"] == origin]
    return found[0] if found else None


def test_a_member_leaves_and_rejoins_its_vlan_from_the_api(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(
        topology("relay").model_copy(update={"security": "psk", "vlan_control": True})
    )
    lab.wait_ready(timeout=30)
    wait_until("ping b -> a", lambda: pings(lab, "b", "a"))
    a = lab.status("a")["peer_id"]

    left = lab.http_post("a", "/ui/vlans/lab/leave")
    assert left.status == 200, left.body
    (vlan,) = lab.status("a")["vlans"]
    assert left.json() == {"label": "lab", "vlan_id": vlan["vlan_id"], "joined": False}
    assert not has_link(lab, "a")
    assert vlan["joined"] is False and vlan["interface"] == "pt-lab" and "mac" not in vlan
    # The leave withdrew a's routes: b keeps a's latest announcement, with no token in it
    # (an expired route would be gone instead, and then the origin would not be listed).
    wait_until("b to take a's withdrawal", lambda: tokens_of(lab, "b", a) == 0)
    assert not pings(lab, "b", "a")
    assert lab.http_post("a", "/ui/vlans/lab/leave").status == 409

    joined = lab.http_post("a", "/ui/vlans/lab/join")
    assert joined.status == 200, joined.body
    assert joined.json()["joined"] is True
    assert has_link(lab, "a")
    wait_until("ping b -> a again", lambda: pings(lab, "b", "a"))
    (vlan,) = lab.status("a")["vlans"]
    assert vlan["joined"] is True and vlan["mac"]
    assert lab.http_post("a", "/ui/vlans/lab/join").status == 409
    assert lab.http_post("a", "/ui/vlans/nope/leave").status == 404

    # The relay's config does not enable VLAN control: it refuses, even on loopback.
    refused = lab.http_post("r", "/ui/vlans/lab/leave")
    assert refused.status == 403 and "api.vlan_control" in refused.json()["error"]
    # No answer of the control API carries a key or secret.
    for answer in (left, joined, refused):
        words = json.dumps(answer.json()).lower()
        assert "key" not in words and "secret" not in words and "psk" not in words


def test_without_vlan_control_a_member_refuses_to_leave(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(topology("relay"))
    lab.wait_ready(timeout=30)
    refused = lab.http_post("a", "/ui/vlans/lab/leave")
    assert refused.status == 403
    assert has_link(lab, "a")
    assert lab.status("a")["vlans"][0]["joined"] is True
    assert lab.http_get("a", "/ui/view.json").json()["controls"] == {"join_leave": False}
