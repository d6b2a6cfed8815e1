"""Deleting a VLAN's authority Secret: the operator never mints a new key for a VLAN whose
annotation names one. Every member keeps working on what it holds (shown by running the
members' sidecars from the objects left in the cluster and pinging across), a Warning Event
and a Ready condition say what happened and how to restore the key, and restoring it
resumes the VLAN (a pod held back meanwhile joins)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml
from operator_harness import Kubectl, OperatorFactory, wait_for
from sidecar_pods import UNDERLAY, netns_pair, pings, start_sidecar, wait, workdir, write_projected

from peertap.sidecar import identity

NS = "default"
VLAN = {
    "apiVersion": "peertap.io/v1alpha1",
    "kind": "CryptoVLAN",
    "metadata": {"name": "lab"},
    "spec": {
        "security": "public",
        "interface": {"name": "pt-lab", "ipam": {"subnet": "10.251.8.0/24"}},
    },
}


def _pod(name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"peertap.io/vlans": "lab"}},
            "spec": {
                "containers": [{"name": "app", "image": "busybox:1.36"}],
                "initContainers": [{"name": "peertap", "image": "registry.example/peertap:test"}],
            },
        }
    )


def _get(kubectl: Kubectl, kind: str, name: str) -> dict[str, Any] | None:
    out = kubectl("get", kind, name, "-n", NS, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def _ready(kubectl: Kubectl) -> dict[str, Any]:
    vlan = _get(kubectl, "cryptovlans.peertap.io", "lab") or {}
    for cond in (vlan.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return dict(cond)
    return {}


def _member_files(kubectl: Kubectl, pod: str) -> dict[str, bytes]:
    """What pod's projected volume holds, read from the cluster."""
    files: dict[str, bytes] = {}
    cm = _get(kubectl, "configmap", f"peertap-m-{pod}")
    assert cm is not None
    files.update({k: v.encode() for k, v in cm["data"].items()})
    for suffix in ("node", "cred"):
        secret = _get(kubectl, "secret", f"peertap-m-{pod}-{suffix}")
        assert secret is not None
        files.update({k: base64.b64decode(v) for k, v in secret["data"].items()})
    return files


def test_deleting_the_authority_secret_keeps_every_member_working_and_warns(
    kubectl: Kubectl, operator_factory: OperatorFactory, tmp_path: Path
) -> None:
    kubectl.apply_text(yaml.safe_dump(VLAN))
    kubectl.apply_text(_pod("a") + "---\n" + _pod("b"))
    # No periodic resync within the test: the operator acts on the Secret's events (its
    # deletion, and the restore of an unlabelled copy).
    with operator_factory(resync_interval=600.0):
        wait_for("b's node key", lambda: _get(kubectl, "secret", "peertap-m-b-node"))
        b_key = identity.from_pem(
            base64.b64decode(_get(kubectl, "secret", "peertap-m-b-node")["data"]["node.key"])  # type: ignore[index]
        )
        bootstrap = f"/ip4/{UNDERLAY['b']}/tcp/4001/p2p/{b_key.peer_id}"
        patch = {"spec": {"bootstrapPeers": [bootstrap]}}
        kubectl(
            "patch",
            "cryptovlans.peertap.io",
            "lab",
            "-n",
            NS,
            "--type=merge",
            "-p",
            json.dumps(patch),
        )
        wait_for(
            "a bootstraps from b",
            lambda: bootstrap in json.loads(_member_files(kubectl, "a")["node.json"])["bootstrap"],
        )
        before = {p: _member_files(kubectl, p) for p in "ab"}
        authority = _get(kubectl, "secret", "lab-authority")
        assert authority is not None
        annotation = _get(kubectl, "cryptovlans.peertap.io", "lab")["metadata"]["annotations"][  # type: ignore[index]
            "peertap.io/authority"
        ]

        kubectl("delete", "secret", "lab-authority", "-n", NS)
        ready = wait_for(
            "AuthorityMissing",
            lambda: (c := _ready(kubectl)).get("reason") == "AuthorityMissing" and c,
        )
        assert ready["status"] == "False"
        assert "kubectl create secret generic lab-authority" in ready["message"]
        events = json.loads(kubectl("get", "events", "-n", NS, "-o", "json"))["items"]
        warnings = [
            e
            for e in events
            if e.get("reason") == "AuthorityMissing"
            and e.get("type") == "Warning"
            and e["involvedObject"]["name"] == "lab"
        ]
        assert warnings, [e.get("reason") for e in events]

        # A new pod is held back, named in the condition; nothing is minted or deleted.
        kubectl.apply_text(_pod("c"))
        wait_for("c waiting", lambda: "waiting to join: c" in _ready(kubectl).get("message", ""))
        assert _get(kubectl, "secret", "lab-authority") is None
        assert _get(kubectl, "configmap", "peertap-m-c") is None
        vlan = _get(kubectl, "cryptovlans.peertap.io", "lab")
        assert vlan["metadata"]["annotations"]["peertap.io/authority"] == annotation  # type: ignore[index]
        after = {p: _member_files(kubectl, p) for p in "ab"}
        assert after == before

        # The members run on what the cluster still holds for them, and reach each other.
        with netns_pair() as pods, workdir() as work:
            dirs = {p: write_projected(work / p, after[p]) for p in pods}
            with (
                start_sidecar(pods["a"], dirs["a"], work),
                start_sidecar(pods["b"], dirs["b"], work),
            ):
                b_addr = json.loads(after["b"]["node.json"])["vlans"][0]["interface"]["address"]
                wait("ping a -> b", lambda: pings(pods["a"], b_addr.split("/")[0]), timeout=90)

        # Restoring the key from a backup resumes the VLAN: c joins.
        backup = tmp_path / "authority.key"
        backup.write_bytes(base64.b64decode(authority["data"]["authority.key"]))
        restore = kubectl(
            *("create", "secret", "generic", "lab-authority", "-n", NS),
            f"--from-file=authority.key={backup}",
            *("--dry-run=client", "-o", "yaml"),
        )
        kubectl.apply_text(restore)
        wait_for(
            "Ready again", lambda: _ready(kubectl).get("reason") not in (None, "AuthorityMissing")
        )
        wait_for("c joined", lambda: _get(kubectl, "configmap", "peertap-m-c"))
