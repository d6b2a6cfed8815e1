"""The node's web UI in a real headless Chromium, against a real lab node.

Chromium runs inside pod a's network namespace (the node API listens on that
namespace's loopback), started by Playwright through a two-line wrapper script.
A screenshot of the page is kept in the test's output directory.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peertap.sidecar.lab import Lab, topology

pytestmark = [pytest.mark.netns, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 40_000


def chromium_in(netns: str, tmp_path: Path) -> Path:
    """An executable that starts Debian's Chromium inside `netns` with the given arguments."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian's chromium is not installed (hack/ensure-system-packages.sh)")
    wrapper = tmp_path / "chromium-in-pod"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {netns} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def wait_for(what: str, check: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def peertap_in(lab: Lab, pod: str, *args: str) -> str:
    """`peertap ARGS` run inside the pod, against its node's API."""
    argv = [sys.executable, "-P", "-m", "peertap.sidecar", *args, "--api", "127.0.0.1:9464"]
    r = lab.exec(pod, argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out: str = r.stdout
    return out


def test_status_and_topology_commands_print_the_mesh(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(topology("relay"))
    lab.wait_ready(timeout=30)
    ids = {pod: lab.status(pod)["peer_id"] for pod in ("a", "r", "b")}
    wait_for(
        "a to learn b's tokens through r",
        lambda: any(o.get("node") == ids["b"] for o in lab.status("a").get("origins", [])),
    )
    assert peertap_in(lab, "a", "topology").splitlines() == [
        f"{ids['a']} (this node)",
        f"└── {ids['r']} (relay, trunk)",
        f"    └── {ids['b']} (member, 2 hops, 3 tokens)",
    ]
    dot = peertap_in(lab, "a", "topology", "--dot")
    assert f'"{ids["a"]}" -- "{ids["r"]}";' in dot and f'"{ids["r"]}" -- "{ids["b"]}";' in dot
    status = peertap_in(lab, "a", "status")
    assert f"node     {ids['a']}" in status
    assert "pt-lab" in status and lab.overlay_address("a") in status
    # The trunk's RTT, measured by path probes (docs/protocol.md, 5a).
    assert re.search(r"\d ms", status), status
    raw = peertap_in(lab, "a", "status", "--json")
    assert '"peer_id": "' + ids["a"] + '"' in raw


def test_a_private_vlan_shows_its_mls_group_and_no_key(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(topology("relay").model_copy(update={"security": "mls"}))
    lab.wait_ready(timeout=30)

    def view() -> dict[str, Any]:
        doc: dict[str, Any] = lab.http_get("a", "/ui/view.json").json()
        return doc

    wait_for("a group of a and b", lambda: (view()["vlans"][0].get("members") or 0) == 2)
    (vlan,) = view()["vlans"]
    assert (vlan["security"], vlan["mls_state"], vlan["members"]) == ("mls", "member", 2)
    assert vlan["epoch"] >= 1 and vlan["mls_id"] == lab.status("a")["vlans"][0]["mls_id"]
    assert lab.status("b")["peer_id"] in vlan["member_nodes"]

    def field_names(doc: Any) -> list[str]:
        if isinstance(doc, dict):
            return [str(k) for k in doc] + [n for v in doc.values() for n in field_names(v)]
        if isinstance(doc, list):
            return [n for v in doc for n in field_names(v)]
        return []

    # Field names only: values such as peer ids are random text that may spell "key".
    keyish = [k for k in field_names(view()) if "key" in k.lower() or "secret" in k.lower()]
    assert keyish == []


def test_the_ui_shows_the_vlan_its_members_and_the_topology(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    lab = lab_factory(topology("relay"))
    lab.wait_ready(timeout=30)
    ids = {pod: lab.status(pod)["peer_id"] for pod in ("a", "r", "b")}
    wait_for(
        "a to learn b's tokens through r",
        lambda: any(o.get("node") == ids["b"] for o in lab.status("a").get("origins", [])),
    )
    wrapper = chromium_in(lab.netns("a"), tmp_path)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(wrapper), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(lab.ui_url("a"))
            page.wait_for_selector('body[data-loaded="true"]', timeout=WAIT_MS)

            row = page.locator('#vlans tr[data-vlan="lab"]')
            row.wait_for(timeout=WAIT_MS)
            cells = row.locator("td").all_inner_texts()
            assert cells[1] == "pt-lab"
            assert lab.overlay_address("a") in cells[3]
            members = row.locator("li[data-peer]")
            members.nth(1).wait_for(timeout=WAIT_MS)
            assert set(members.evaluate_all("els => els.map(e => e.dataset.peer)")) == {
                ids["a"],
                ids["b"],
            }

            svg = page.locator("#topology")
            for pod in ("a", "r", "b"):
                svg.locator(f'g[data-peer="{ids[pod]}"] circle').wait_for(timeout=WAIT_MS)
            assert svg.locator(f'g.relay[data-peer="{ids["r"]}"]').count() == 1
            assert svg.locator(f'line.trunk[data-a="{ids["a"]}"][data-b="{ids["r"]}"]').count() == 1
            assert svg.locator(f'line[data-a="{ids["r"]}"][data-b="{ids["b"]}"]').count() == 1

            # The lab's config does not enable VLAN control: no join or leave buttons.
            assert page.locator("#vlans button").count() == 0
            assert "Read-only" in page.locator("#vlan-note").inner_text()

            trunk = page.locator(f'#trunks tr[data-peer="{ids["r"]}"]')
            assert re.search(r"\d ms", trunk.inner_text()), trunk.inner_text()
            shot = tmp_path / "node-ui.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_ui_leaves_and_joins_a_vlan_when_the_config_allows_it(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    lab = lab_factory(topology("relay").model_copy(update={"vlan_control": True}))
    lab.wait_ready(timeout=30)
    wrapper = chromium_in(lab.netns("a"), tmp_path)

    def has_link() -> bool:
        argv = ["ip", "link", "show", "pt-lab"]
        return lab.exec("a", argv, capture_output=True).returncode == 0

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(wrapper), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(lab.ui_url("a"))
            page.wait_for_selector('body[data-loaded="true"]', timeout=WAIT_MS)
            row = page.locator('#vlans tr[data-vlan="lab"]')
            row.locator('button[data-action="leave"]').click(timeout=WAIT_MS)
            page.wait_for_selector(
                '#vlans tr[data-vlan="lab"][data-joined="false"]', timeout=WAIT_MS
            )
            assert not has_link()
            assert lab.status("a")["vlans"][0]["joined"] is False
            row.locator('button[data-action="join"]').click(timeout=WAIT_MS)
            page.wait_for_selector(
                '#vlans tr[data-vlan="lab"][data-joined="true"]', timeout=WAIT_MS
            )
            assert has_link()
            assert page.locator("#error").is_hidden()
        finally:
            browser.close()
    wait_for(
        "ping b -> a",
        lambda: (
            lab.exec(
                "b", ["ping", "-c1", "-W1", lab.overlay_address("a")], capture_output=True
            ).returncode
            == 0
        ),
    )
