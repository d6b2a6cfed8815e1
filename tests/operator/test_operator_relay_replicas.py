"""MVLAN relays with several replicas: one identity, Deployment and Service each, against the
emulated API with the real operator and kubectl."""

from __future__ import annotations

import base64
import json
from typing import Any

import emulated as em
import kubernetes_validate
import yaml
from emulated import EXAMPLES, NS
from kube_emulator import EmulatorThread
from operator_harness import Kubectl, OperatorFactory, wait_for

from peertap.sidecar import identity

RESYNC = 0.3
NODE_IP = "203.0.113.11"


def mvlan_yaml(replicas: int, service_type: str = "NodePort") -> str:
    mvlan = yaml.safe_load((EXAMPLES / "mvlan.yaml").read_text())
    mvlan["spec"]["relays"].update({"replicas": replicas, "serviceType": service_type})
    return yaml.safe_dump(mvlan)


def relay_objects(emulator: EmulatorThread) -> dict[str, set[str]]:
    def ours(objs: dict[str, dict[str, Any]]) -> set[str]:
        return {n for n in objs if n.startswith("campus-relay")}

    return {
        "deployments": ours(emulator.objects("apps/v1/deployments", NS)),
        "services": ours(emulator.objects("v1/services", NS)),
        "secrets": {n for n in ours(em.secrets(emulator)) if n.endswith("-key")},
        "credentials": {n for n in ours(em.secrets(emulator)) if n.endswith("-cred")},
        "configmaps": ours(em.configmaps(emulator)),
    }


def peer_ids(emulator: EmulatorThread) -> dict[str, str]:
    return {
        name: identity.from_pem(em.decoded(secret, "node.key")).peer_id
        for name, secret in em.secrets(emulator).items()
        if name.startswith("campus-relay") and name.endswith("-key")
    }


def relay_addresses(emulator: EmulatorThread) -> list[str]:
    mvlan = emulator.objects("peertap.io/v1alpha1/mvlans", NS).get("campus", {})
    return list((mvlan.get("status") or {}).get("relayAddresses") or [])


def allocate_node_port(kubectl: Kubectl, service: str, port: int) -> None:
    """What the API server does for a NodePort Service; the emulator does not."""
    ports = [
        {"name": "p2p", "port": 4001, "targetPort": "p2p", "protocol": "TCP", "nodePort": port},
        {"name": "p2p-udp", "port": 4001, "targetPort": "p2p-udp", "protocol": "UDP"},
    ]
    kubectl(
        "patch", "service", service, "-n", NS, "--type=merge",
        "-p", json.dumps({"spec": {"ports": ports}}),
    )  # fmt: skip


def test_replicas_get_one_key_deployment_and_service_each_and_are_listed_by_address(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "n1"},
                "status": {"addresses": [{"type": "ExternalIP", "address": NODE_IP}]},
            }
        )
    )
    kubectl.apply_text(mvlan_yaml(3))
    with operator_factory(resync_interval=RESYNC):
        objs = wait_for("three relays", lambda: len(relay_objects(emulator)["services"]) == 3)
        objs = relay_objects(emulator)
        names = {"campus-relay", "campus-relay-1", "campus-relay-2"}
        assert objs["deployments"] == objs["services"] == names
        assert objs["secrets"] == {f"{n}-key" for n in names}
        assert objs["credentials"] == {f"{n}-cred" for n in names}
        assert objs["configmaps"] == {"campus-relay"}
        ids = peer_ids(emulator)
        assert len(set(ids.values())) == 3

        deployments = emulator.objects("apps/v1/deployments", NS)
        services = emulator.objects("v1/services", NS)
        for name in names:
            dep, svc = deployments[name], services[name]
            assert dep["spec"]["replicas"] == 1
            sources = dep["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
            assert {"secret": {"name": f"{name}-key"}} in sources
            assert {"secret": {"name": f"{name}-cred"}} in sources
            # Each Service selects its own relay's pods and no other relay's.
            for other in names:
                labels = deployments[other]["spec"]["template"]["metadata"]["labels"]
                assert (svc["spec"]["selector"].items() <= labels.items()) == (other == name)
            # The relay's trunk stream (TCP) and datagram path (UDP), both on 4001.
            udp = ("p2p-udp", 4001, "UDP")
            service_ports = [(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]]
            assert service_ports == [("p2p", 4001, "TCP"), udp]
            assert (
                next(p for p in svc["spec"]["ports"] if p["protocol"] == "UDP")["targetPort"]
                == "p2p-udp"
            )
            (container,) = dep["spec"]["template"]["spec"]["containers"]
            assert udp in [
                (p["name"], p["containerPort"], p["protocol"]) for p in container["ports"]
            ]
            for obj in (dep, svc):
                # What the operator wrote; the status is the API server's and its version's.
                spec_only = {k: v for k, v in obj.items() if k != "status"}
                kubernetes_validate.validate(spec_only, "1.31", strict=True)

        for port, name in enumerate(sorted(names), start=30401):
            allocate_node_port(kubectl, name, port)
        expected = [
            f"/ip4/{NODE_IP}/tcp/30401/p2p/{ids['campus-relay-key']}",
            f"/ip4/{NODE_IP}/tcp/30402/p2p/{ids['campus-relay-1-key']}",
            f"/ip4/{NODE_IP}/tcp/30403/p2p/{ids['campus-relay-2-key']}",
        ]
        addresses = wait_for(
            "node port addresses of every relay",
            lambda: (a := relay_addresses(emulator))[:3] == expected and a,
        )
        for name in names:
            dns = f"/dns/{name}.{NS}.svc/tcp/4001/p2p/{ids[name + '-key']}"
            assert dns in addresses


def test_keys_survive_restarts_and_scale_down_and_deletion_remove_them(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply_text(mvlan_yaml(3, "ClusterIP"))
    with operator_factory(resync_interval=RESYNC):
        wait_for("three keys", lambda: len(relay_objects(emulator)["secrets"]) == 3)
        before = em.secrets(emulator)
    with operator_factory(resync_interval=RESYNC):
        # Let the restarted operator reconcile (the status is rewritten with the same keys).
        wait_for(
            "relay addresses of all three",
            lambda: (
                {a.rsplit("/", 1)[1] for a in relay_addresses(emulator)}
                == set(peer_ids(emulator).values())
            ),
        )
        after = em.secrets(emulator)
        for name in ("campus-relay-key", "campus-relay-1-key", "campus-relay-2-key"):
            assert after[name]["metadata"]["uid"] == before[name]["metadata"]["uid"]
            assert after[name]["data"] == before[name]["data"]

        kubectl.apply_text(mvlan_yaml(1, "ClusterIP"))
        wait_for(
            "relays 1 and 2 removed",
            lambda: (
                relay_objects(emulator)
                == {
                    "deployments": {"campus-relay"},
                    "services": {"campus-relay"},
                    "secrets": {"campus-relay-key"},
                    "credentials": {"campus-relay-cred"},
                    "configmaps": {"campus-relay"},
                }
            ),
        )
        assert (
            em.secrets(emulator)["campus-relay-key"]["data"] == before["campus-relay-key"]["data"]
        )
        first = identity.from_pem(em.decoded(before["campus-relay-key"], "node.key")).peer_id
        wait_for(
            "addresses of relay 0 only",
            lambda: (a := relay_addresses(emulator)) and all(x.endswith(first) for x in a),
        )

        # Pausing keeps the first identity; scaling up again makes new ones.
        kubectl.apply_text(mvlan_yaml(0, "ClusterIP"))
        wait_for(
            "paused",
            lambda: (
                emulator.objects("apps/v1/deployments", NS)["campus-relay"]["spec"]["replicas"] == 0
            ),
        )
        kubectl.apply_text(mvlan_yaml(2, "ClusterIP"))
        wait_for("two keys", lambda: len(relay_objects(emulator)["secrets"]) == 2)
        again = em.secrets(emulator)
        assert again["campus-relay-key"]["data"] == before["campus-relay-key"]["data"]
        assert again["campus-relay-1-key"]["data"] != before["campus-relay-1-key"]["data"]

        kubectl("delete", "mvlan", "campus", "-n", NS, "--wait=false")
        wait_for(
            "everything removed",
            lambda: (
                relay_objects(emulator)
                == {
                    "deployments": set(),
                    "services": set(),
                    "secrets": set(),
                    "credentials": set(),
                    "configmaps": set(),
                }
            ),
        )


def test_a_single_relay_deployment_from_before_replicas_is_replaced_keeping_its_key(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    old_selector = {
        "app.kubernetes.io/name": "peertap-relay",
        "app.kubernetes.io/instance": "campus",
    }
    kubectl.apply_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "campus-relay",
                    "labels": {"app.kubernetes.io/managed-by": "peertap-operator"},
                    "annotations": {"peertap.io/config-hash": "0000000000000000"},
                },
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": old_selector},
                    "template": {
                        "metadata": {"labels": old_selector},
                        "spec": {"containers": [{"name": "peertap", "image": "old"}]},
                    },
                },
            }
        )
    )
    old = identity.generate()
    kubectl.apply_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "campus-relay-key"},
                "data": {"node.key": base64.b64encode(identity.to_pem(old)).decode()},
            }
        )
    )
    kubectl.apply_text(mvlan_yaml(1, "ClusterIP"))
    with operator_factory(resync_interval=RESYNC):
        selector = wait_for(
            "per-relay selector",
            lambda: (
                emulator.objects("apps/v1/deployments", NS)
                .get("campus-relay", {})
                .get("spec", {})
                .get("selector", {})
                .get("matchLabels", {})
                .get("peertap.io/relay")
            ),
        )
        assert selector == "campus-relay"
        addresses = wait_for("relay addresses", lambda: relay_addresses(emulator))
        assert all(a.endswith(f"/p2p/{old.peer_id}") for a in addresses)
