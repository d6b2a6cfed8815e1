"""The resync asks the sidecars (the sidecar's own API on loopback pod IPs) for their state,
and the operator writes it to CryptoVLAN and MVLAN status."""

from __future__ import annotations

import json
from typing import Any

import emulated as em
import yaml
from emulated import EXAMPLES, NS
from kube_emulator import EmulatorThread
from operator_harness import Kubectl, OperatorFactory, wait_for
from sidecar_api import serving, snapshot

from peertap.sidecar import identity

RESYNC = 0.3
MLS_X = "11" * 16
MLS_Y = "22" * 16


def sidecar_pod(name: str, labels: dict[str, str]) -> str:
    """A member pod as the webhook leaves it: with a `peertap` container."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "containers": [
                    {"name": "app", "image": "busybox:1.36"},
                    {"name": "peertap", "image": "registry.example/peertap:test"},
                ]
            },
        }
    )


def set_pod_ip(kubectl: Kubectl, pod: str, ip: str, *, sidecar_ready: bool = False) -> None:
    status: dict[str, Any] = {"podIP": ip, "phase": "Running"}
    if sidecar_ready:
        status["containerStatuses"] = [{"name": "peertap", "ready": True}]
    kubectl(
        "patch",
        "pod",
        pod,
        "-n",
        NS,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def ready_members(emulator: EmulatorThread) -> set[str]:
    return {m["pod"] for m in em.members(emulator) if m["ready"]}


def reported(emulator: EmulatorThread) -> tuple[int, str, dict[str, str]]:
    status = em.cryptovlan(emulator).get("status") or {}
    per_member = {m["pod"]: m.get("mlsId", "") for m in status.get("members") or []}
    return status.get("epoch", 0), status.get("mlsId", ""), per_member


def test_cryptovlan_status_carries_the_epoch_most_members_report(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "cryptovlan.yaml", EXAMPLES / "mvlan.yaml")
    kubectl.apply_text(
        "---\n".join(sidecar_pod(n, {"app": "lab-node"}) for n in ("a", "b", "c", "d"))
    )
    # d has no IP yet; c's address has no sidecar listening. The kubelet calls a's and c's
    # sidecar containers ready.
    for pod, ip in (("a", "127.0.0.21"), ("b", "127.0.0.22"), ("c", "127.0.0.23")):
        set_pod_ip(kubectl, pod, ip, sidecar_ready=pod in "ac")
    with operator_factory(resync_interval=RESYNC):
        vlan = wait_for("vlanId", lambda: em.cryptovlan(emulator).get("status", {}).get("vlanId"))
        wait_for("four members", lambda: len(em.members(emulator)) == 4)
        a = snapshot("12D3KooWa", peers=["12D3KooWb"], vlans=[(vlan, 7, MLS_X)])
        b = snapshot("12D3KooWb", peers=["12D3KooWa"], vlans=[(vlan, 7, MLS_X)])
        with serving("127.0.0.21", a) as board_a, serving("127.0.0.22", b):
            wait_for(
                "epoch 7 reported",
                lambda: (
                    reported(emulator) == (7, MLS_X, {"a": MLS_X, "b": MLS_X, "c": "", "d": ""})
                ),
            )
            cond = em.condition(em.cryptovlan(emulator), "Ready")
            assert cond is not None and cond["status"] == "True"
            members = {m["pod"]: m for m in em.members(emulator)}
            assert members["a"]["epoch"] == 7 and members["c"]["epoch"] == 0
            # A member is ready when its sidecar container is ready and its sidecar reported
            # the VLAN: a is; c's container is ready but its sidecar said nothing; b reported
            # but its container is not ready.
            wait_for("a alone ready", lambda: ready_members(emulator) == {"a"})

            # a moves on to epoch 8 and c's sidecar comes up there too: 2 against 1.
            board_a.publish(snapshot("12D3KooWa", vlans=[(vlan, 8, MLS_Y)]))
            c = snapshot("12D3KooWc", vlans=[(vlan, 8, MLS_Y)])
            with serving("127.0.0.23", c):
                wait_for(
                    "epoch 8 reported",
                    lambda: (
                        reported(emulator)
                        == (8, MLS_Y, {"a": MLS_Y, "b": MLS_X, "c": MLS_Y, "d": ""})
                    ),
                )
                wait_for("a and c ready", lambda: ready_members(emulator) == {"a", "c"})
        # Nobody answers any more: nothing is reported, and the VLAN is still served.
        wait_for(
            "no reports",
            lambda: reported(emulator) == (0, "", {"a": "", "b": "", "c": "", "d": ""}),
        )
        cond = em.condition(em.cryptovlan(emulator), "Ready")
        assert cond is not None and cond["status"] == "True"


def test_a_vlan_the_sidecars_do_not_know_is_not_reported(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "cryptovlan.yaml")
    kubectl.apply_text(sidecar_pod("a", {"app": "lab-node"}))
    set_pod_ip(kubectl, "a", "127.0.0.24")
    other_vlan = "ff" * 16
    board_cm = serving("127.0.0.24", snapshot("12D3KooWa", vlans=[(other_vlan, 3, MLS_X)]))
    with board_cm as board, operator_factory(resync_interval=RESYNC):
        vlan = wait_for("vlanId", lambda: em.cryptovlan(emulator).get("status", {}).get("vlanId"))
        board.publish(snapshot("12D3KooWa", vlans=[(other_vlan, 3, MLS_X), (vlan, 2, MLS_Y)]))
        wait_for("epoch 2", lambda: reported(emulator) == (2, MLS_Y, {"a": MLS_Y}))
        # The sidecar leaves the VLAN (it only knows another one now): nothing is reported.
        board.publish(snapshot("12D3KooWa", vlans=[(other_vlan, 3, MLS_X)]))
        wait_for("nothing reported", lambda: reported(emulator) == (0, "", {"a": ""}))


def relay_pod(mvlan: str, relay: str, name: str) -> dict[str, Any]:
    """A pod as the relay Deployment `relay` would create it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "peertap-relay",
                "app.kubernetes.io/instance": mvlan,
                "peertap.io/relay": relay,
                "peertap.io/role": "relay",
            },
        },
        "spec": {"containers": [{"name": "peertap", "image": "registry.example/peertap:test"}]},
    }


def mvlan_status(emulator: EmulatorThread, name: str = "campus") -> dict[str, Any]:
    mvlan = emulator.objects("peertap.io/v1alpha1/mvlans", NS).get(name, {})
    return dict(mvlan.get("status") or {})


def test_mvlan_peers_seen_counts_the_peers_its_relays_report(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    mvlan = yaml.safe_load((EXAMPLES / "mvlan.yaml").read_text())
    mvlan["spec"]["relays"]["replicas"] = 2
    mvlan["spec"].pop("cryptoVLANs", None)  # no CryptoVLAN in this test
    kubectl.apply_text(yaml.safe_dump(mvlan))
    pods = [relay_pod("campus", "campus-relay", "r0"), relay_pod("campus", "campus-relay-1", "r1")]
    # A relay pod of another MVLAN is not asked.
    pods.append(relay_pod("elsewhere", "elsewhere-relay", "x0"))
    kubectl.apply_text("---\n".join(yaml.safe_dump(p) for p in pods))
    for pod, ip in (("r0", "127.0.0.31"), ("r1", "127.0.0.32"), ("x0", "127.0.0.33")):
        set_pod_ip(kubectl, pod, ip)
    with operator_factory(resync_interval=RESYNC):
        wait_for(
            "two relay keys",
            lambda: {"campus-relay-key", "campus-relay-1-key"} <= set(em.secrets(emulator)),
        )
        peers = [
            identity.from_pem(em.decoded(em.secrets(emulator)[k], "node.key")).peer_id
            for k in ("campus-relay-key", "campus-relay-1-key")
        ]
        r0 = snapshot(peers[0], peers=[peers[1], "12D3KooWm1", "12D3KooWm2"])
        r1 = snapshot(peers[1], peers=[peers[0], "12D3KooWm2", "12D3KooWm3"])
        x0 = snapshot("12D3KooWx", peers=["12D3KooWm4", "12D3KooWm5"])
        with serving("127.0.0.31", r0), serving("127.0.0.32", r1), serving("127.0.0.33", x0):
            wait_for("peersSeen 3", lambda: mvlan_status(emulator).get("peersSeen") == 3)
        # The relays stop answering: they are not counted.
        wait_for("peersSeen 0", lambda: mvlan_status(emulator).get("peersSeen") == 0)
        cond = em.condition(emulator.objects("peertap.io/v1alpha1/mvlans", NS)["campus"], "Ready")
        assert cond is not None and cond["status"] == "True"
