"""The real operator (kopf in a thread) against the emulated API, driven with the real kubectl."""

from __future__ import annotations

import base64
import json

import emulated as em
import kubernetes_validate
import yaml
from emulated import EXAMPLES, NS
from kube_emulator import EmulatorThread
from operator_harness import Kubectl, OperatorFactory, wait_for

from peertap.operator import credentials, reconcile
from peertap.sidecar import config as sidecar_config
from peertap.sidecar import identity, ids


def test_examples_create_vlan_authority_members_and_relay(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "mvlan.yaml", EXAMPLES / "cryptovlan.yaml", EXAMPLES / "pod.yaml")
    with operator_factory():
        vlan = wait_for(
            "status.vlanId", lambda: em.cryptovlan(emulator).get("status", {}).get("vlanId")
        )
        authority_secret = wait_for(
            "authority Secret", lambda: em.secrets(emulator).get("lab-authority")
        )
        authority = identity.from_pem(em.decoded(authority_secret, "authority.key"))
        assert vlan == ids.vlan_id_hex(authority.public_hex, "lab")
        assert authority_secret["metadata"]["ownerReferences"][0]["kind"] == "CryptoVLAN"

        members = wait_for("member lab-client", lambda: em.members(emulator))
        assert [m["pod"] for m in members] == ["lab-client"]
        assert members[0]["address"] == "10.250.0.1/24"

        # The per-pod config is a valid sidecar config naming the VLAN and its address.
        cm = wait_for("member config", lambda: em.configmaps(emulator).get("peertap-m-lab-client"))
        node = sidecar_config.NodeConfig.model_validate_json(cm["data"]["node.json"])
        (vlan_cfg,) = node.vlans
        assert (vlan_cfg.label, vlan_cfg.creator, vlan_cfg.security) == (
            "lab",
            authority.public_hex,
            "public",
        )
        assert vlan_cfg.credential is None
        assert vlan_cfg.interface.name == "pt-lab"
        assert vlan_cfg.interface.address == "10.250.0.1/24"
        assert vlan_cfg.interface.mac == members[0]["mac"]
        assert vlan_cfg.interface.mtu == 1400

        # The credential is signed by the authority for the pod's node key.
        secrets = em.secrets(emulator)
        node_key = identity.from_pem(em.decoded(secrets["peertap-m-lab-client-node"], "node.key"))
        cred = em.decoded(secrets["peertap-m-lab-client-cred"], "lab.cred.json").decode()
        payload = credentials.verify(
            cred, authority_hex=authority.public_hex, vlan_id=vlan, now=reconcile.utcnow()
        )
        assert payload["member_key"] == node_key.public_hex
        assert payload["vlan_id"] == vlan
        assert payload["identity"] == "default/lab-client"

        # The MVLAN got a relay with a key, a Service and addresses ending in its peer id.
        mvlan = wait_for(
            "relay addresses",
            lambda: (
                emulator.objects("peertap.io/v1alpha1/mvlans", NS)
                .get("campus", {})
                .get("status", {})
                .get("relayAddresses")
            ),
        )
        relay_key = identity.from_pem(
            em.decoded(em.secrets(emulator)["campus-relay-key"], "node.key")
        )
        assert all(a.endswith(f"/p2p/{relay_key.peer_id}") for a in mvlan)
        assert "campus-relay" in emulator.objects("apps/v1/deployments", NS)
        assert "campus-relay" in emulator.objects("v1/services", NS)
        # Members bootstrap from the relay named by mvlanRef.
        wait_for(
            "bootstrap from the relay",
            lambda: (
                set(mvlan)
                <= set(
                    json.loads(
                        em.configmaps(emulator)["peertap-m-lab-client"]["data"]["node.json"]
                    )["bootstrap"]
                )
            ),
        )

        # Everything the operator wrote is a valid Kubernetes object.
        for resource in ("v1/secrets", "v1/configmaps", "v1/services", "apps/v1/deployments"):
            for obj in emulator.objects(resource, NS).values():
                # What the operator wrote; a status is the API server's and its version's.
                spec_only = {k: v for k, v in obj.items() if k != "status"}
                kubernetes_validate.validate(spec_only, "1.31", strict=True)

        # No sidecar runs here, so the member is not ready (readiness with real sidecar
        # reports: test_operator_sidecar_reports.py).
        wait_for(
            "the Ready summary",
            lambda: (
                (c := em.condition(em.cryptovlan(emulator), "Ready"))
                and "1 members, 0 ready" in c["message"]
            ),
        )

        # kubectl resolves the short name; the emulator has no server-side table printing.
        assert kubectl("get", "cvlan", "lab", "-n", NS, "-o", "jsonpath={.status.vlanId}") == vlan


def test_restart_reuses_keys_and_addresses_without_duplicates(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "cryptovlan.yaml", EXAMPLES / "mvlan.yaml")
    kubectl.apply_text(
        em.pod_yaml("a", {"app": "lab-node"}) + "---\n" + em.pod_yaml("b", {"app": "lab-node"})
    )
    with operator_factory() as first:
        wait_for("two members", lambda: len(em.members(emulator)) == 2)
        wait_for(
            "relay key and credentials",
            lambda: {"campus-relay-key", "campus-relay-cred"} <= set(em.secrets(emulator)),
        )
        before_secrets = em.secrets(emulator)
        before_members = em.members(emulator)
        first_ca = first.ca_pem
    with operator_factory() as second:
        assert second.ca_pem == first_ca
        kubectl.apply_text(em.pod_yaml("c", {"peertap.io/vlans": "lab"}))
        wait_for("three members", lambda: len(em.members(emulator)) == 3)
        after_secrets = em.secrets(emulator)
        after_members = em.members(emulator)
    for name in ("lab-authority", "campus-relay-key", "peertap-m-a-node", "peertap-m-b-node"):
        assert after_secrets[name]["data"] == before_secrets[name]["data"], name
        assert after_secrets[name]["metadata"]["uid"] == before_secrets[name]["metadata"]["uid"]
    assert sorted(after_secrets) == sorted(
        [*before_secrets, "peertap-m-c-node", "peertap-m-c-cred"]
    )
    assert after_members[:2] == before_members
    addresses = [m["address"] for m in after_members]
    assert len(set(addresses)) == 3


def test_pod_deletion_releases_member_address_and_secrets(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "cryptovlan.yaml")
    kubectl.apply_text(
        em.pod_yaml("a", {"app": "lab-node"}) + "---\n" + em.pod_yaml("b", {"app": "lab-node"})
    )
    with operator_factory():
        wait_for("two members", lambda: len(em.members(emulator)) == 2)
        kubectl("delete", "pod", "a", "-n", NS, "--wait=false")
        wait_for("member a gone", lambda: [m["pod"] for m in em.members(emulator)] == ["b"])
        wait_for(
            "pod a's objects deleted",
            lambda: (
                not {"peertap-m-a-node", "peertap-m-a-cred"} & set(em.secrets(emulator))
                and "peertap-m-a" not in em.configmaps(emulator)
            ),
        )
        allocations = json.loads(em.configmaps(emulator)["lab-vlan"]["data"]["allocations.json"])
        assert sorted(allocations) == ["b"]
        # The released address goes to the next pod.
        kubectl.apply_text(em.pod_yaml("c", {"app": "lab-node"}))
        members = wait_for(
            "member c", lambda: len(em.members(emulator)) == 2 and em.members(emulator)
        )
        assert {m["pod"]: m["address"] for m in members} == {
            "b": "10.250.0.2/24",
            "c": "10.250.0.1/24",
        }


def test_vlan_deletion_runs_the_finalizer_cleanup(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "cryptovlan.yaml")
    kubectl.apply_text(em.pod_yaml("a", {"app": "lab-node"}))
    with operator_factory():
        wait_for("member", lambda: em.members(emulator))
        assert "peertap.io/cleanup" in em.cryptovlan(emulator)["metadata"]["finalizers"]
        kubectl("delete", "cvlan", "lab", "-n", NS, "--wait=false")
        wait_for("CryptoVLAN gone", lambda: not em.cryptovlan(emulator))
        leftovers = {
            n
            for n in [*em.secrets(emulator), *em.configmaps(emulator)]
            if n.startswith(("lab-", "peertap-m-"))
        }
        assert leftovers == set()


def test_bad_spec_sets_a_condition_and_keeps_the_operator_running(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    bad = yaml.safe_load((EXAMPLES / "cryptovlan.yaml").read_text())
    bad["metadata"]["name"] = "broken"
    bad["spec"]["interface"]["ipam"]["subnet"] = "10.250.0.7/24"
    kubectl.apply(EXAMPLES / "cryptovlan.yaml")
    kubectl.apply_text(yaml.safe_dump(bad))
    with operator_factory():
        cond = wait_for(
            "SpecValid", lambda: em.condition(em.cryptovlan(emulator, "broken"), "SpecValid")
        )
        assert cond["status"] == "False"
        assert cond["reason"] == "InvalidSubnet"
        assert "10.250.0.7/24" in cond["message"]
        # The healthy VLAN next to it still works, and a label change is refused.
        wait_for("lab served", lambda: em.cryptovlan(emulator).get("status", {}).get("vlanId"))
        vlan_id = em.cryptovlan(emulator)["status"]["vlanId"]
        # The API server refuses it where the CRD carries an immutability rule; otherwise
        # the operator keeps the last valid spec and says why.
        relabel = (
            "patch",
            "cvlan",
            "lab",
            "-n",
            NS,
            "--type=merge",
            "-p",
            '{"spec":{"label":"x"}}',
        )
        if "immutable" in kubectl(*relabel, check=False):
            assert em.cryptovlan(emulator)["spec"].get("label", "lab") == "lab"
        else:
            cond = wait_for(
                "LabelImmutable",
                lambda: (
                    (c := em.condition(em.cryptovlan(emulator), "SpecValid"))
                    and c["reason"] == "LabelImmutable"
                    and c
                ),
            )
            assert "last valid spec stays in force" in cond["message"]
        assert em.cryptovlan(emulator)["status"]["vlanId"] == vlan_id


def test_unreadable_authority_key_freezes_the_vlan_with_a_condition_until_fixed(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    garbage = base64.b64encode(b"not a key").decode()
    kubectl.apply_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "lab-authority"},
                "data": {"authority.key": garbage},
            }
        )
    )
    kubectl.apply(EXAMPLES / "cryptovlan.yaml")
    with operator_factory():
        cond = wait_for(
            "AuthorityUnreadable",
            lambda: (
                (c := em.condition(em.cryptovlan(emulator), "SpecValid"))
                and c["reason"] == "AuthorityUnreadable"
                and c
            ),
        )
        assert "lab-authority" in cond["message"]
        assert not em.cryptovlan(emulator)["status"]["vlanId"]
        # Deleting the broken Secret lets the next reconcile make a fresh key.
        kubectl("delete", "secret", "lab-authority", "-n", NS)
        kubectl.apply_text(em.pod_yaml("a", {"app": "lab-node"}))
        wait_for("served", lambda: em.members(emulator))
        assert em.condition(em.cryptovlan(emulator), "SpecValid")["status"] == "True"  # type: ignore[index]
