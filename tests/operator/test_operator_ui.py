"""The operator's cluster page: the real operator against the emulated API, read over HTTP and
in a real headless Chromium."""

from __future__ import annotations

import json
import secrets
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from emulated import NS
from kube_emulator import EmulatorThread
from operator_harness import Kubectl, OperatorFactory, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
CHROMIUM_ARGS += ["--disable-background-networking", "--disable-component-update"]


def resources(prefix: str) -> str:
    return f"""
apiVersion: peertap.io/v1alpha1
kind: MVLAN
metadata: {{name: {prefix}campus}}
spec:
  cryptoVLANs: [{prefix}lab]
---
apiVersion: peertap.io/v1alpha1
kind: CryptoVLAN
metadata: {{name: {prefix}lab}}
spec:
  interface: {{ipam: {{subnet: 10.77.0.0/24}}}}
  mvlanRef: {{name: {prefix}campus}}
---
apiVersion: v1
kind: Pod
metadata:
  name: {prefix}client
  labels: {{peertap.io/vlans: {prefix}lab}}
spec:
  containers: [{{name: app, image: busybox:1.36}}]
"""


def get(url: str) -> tuple[int, bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read(), dict(r.headers)


def cluster(base: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(get(base + "/ui/cluster.json")[1])
    return doc


def test_cluster_page_lists_vlans_members_relays_and_no_secrets(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory, tmp_path: Path
) -> None:
    prefix = f"ui{secrets.token_hex(2)}-"
    kubectl.apply_text(resources(prefix), namespace=NS)
    with operator_factory() as op:
        base = f"http://127.0.0.1:{op.ports['ui']}"
        doc = wait_for(
            "a member and relay addresses",
            lambda: (
                (d := cluster(base))["cryptoVLANs"]
                and d["cryptoVLANs"][0]["members"]
                and d["mvlans"][0]["relayAddresses"]
                and d
            ),
        )
        (vlan,) = doc["cryptoVLANs"]
        assert (vlan["namespace"], vlan["name"], vlan["mvlan"]) == (
            NS,
            f"{prefix}lab",
            f"{prefix}campus",
        )
        assert len(vlan["vlanId"]) == 32
        assert [m["pod"] for m in vlan["members"]] == [f"{prefix}client"]
        assert vlan["members"][0]["address"] == "10.77.0.1/24"
        assert {c["type"] for c in vlan["conditions"]} >= {"Ready"}
        (mvlan,) = doc["mvlans"]
        assert mvlan["cryptoVLANs"] == [f"{prefix}lab"] and mvlan["relays"] == 1

        text = json.dumps(doc)
        authority = kubectl("get", "secret", f"{prefix}lab-authority", "-n", NS, "-o", "json")
        key_b64 = json.loads(authority)["data"]["authority.key"]
        assert key_b64 not in text and "PRIVATE KEY" not in text

        status, page, headers = get(base + "/ui/")
        assert status == 200 and b"/ui/static/cluster.js" in page
        assert "script-src 'self'" in headers["Content-Security-Policy"]

        if shutil.which(CHROMIUM) is None:
            pytest.skip("Debian's chromium is not installed (hack/ensure-system-packages.sh)")
        sync_api = pytest.importorskip("playwright.sync_api")
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page_ = browser.new_page(viewport={"width": 1400, "height": 900})
                page_.goto(base + "/ui/")
                page_.wait_for_selector('body[data-loaded="true"]', timeout=30_000)
                row = page_.locator(f'#members tr[data-pod="{NS}/{prefix}client"]')
                assert "10.77.0.1/24" in row.inner_text()
                relay = page_.locator(f'#mvlans tr[data-name="{NS}/{prefix}campus"]')
                assert "/p2p/" in relay.inner_text()
                page_.screenshot(path=str(tmp_path / "cluster-ui.png"), full_page=True)
            finally:
                browser.close()
