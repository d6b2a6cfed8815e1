"""The real operator (kopf in a thread) against the emulated API, driven with the real kubectl."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import urllib.request
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import yaml
from kube_emulator import EmulatorThread
from operator_harness import (
    CERT_SECRET,
    ROOT,
    WEBHOOK_CONFIG,
    Kubectl,
    OperatorFactory,
    RunningOperator,
    wait_for,
)

from peertap.operator import reconcile, webhook_tls
from peertap.sidecar import config as sidecar_config
from peertap.sidecar import identity, ids

EXAMPLES = ROOT / "deploy" / "examples"
NS = "default"


def _vlan(emulator: EmulatorThread, name: str = "lab") -> dict[str, Any]:
    return emulator.objects("peertap.io/v1alpha1/cryptovlans", NS).get(name, {})


def _secrets(emulator: EmulatorThread) -> dict[str, dict[str, Any]]:
    return emulator.objects("v1/secrets", NS)


def _configmaps(emulator: EmulatorThread) -> dict[str, dict[str, Any]]:
    return emulator.objects("v1/configmaps", NS)


def _decoded(secret: dict[str, Any], key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return None


def _members(emulator: EmulatorThread, name: str = "lab") -> list[dict[str, Any]]:
    return list((_vlan(emulator, name).get("status") or {}).get("members") or [])


def _pod(name: str, labels: dict[str, str]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
        }
    )


def test_examples_create_vlan_authority_members_and_relay(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "mvlan.yaml", EXAMPLES / "cryptovlan.yaml", EXAMPLES / "pod.yaml")
    with operator_factory():
        vlan = wait_for("status.vlanId", lambda: _vlan(emulator).get("status", {}).get("vlanId"))
        authority_secret = wait_for(
            "authority Secret", lambda: _secrets(emulator).get("lab-authority")
        )
        authority = identity.from_pem(_decoded(authority_secret, "authority.key"))
        assert vlan == ids.vlan_id_hex(authority.public_hex, "lab")
        assert authority_secret["metadata"]["ownerReferences"][0]["kind"] == "CryptoVLAN"

        members = wait_for("member lab-client", lambda: _members(emulator))
        assert [m["pod"] for m in members] == ["lab-client"]
        assert members[0]["address"] == "10.250.0.1/24"

        # The per-pod config is a valid sidecar config naming the VLAN and its address.
        cm = wait_for("member config", lambda: _configmaps(emulator).get("peertap-m-lab-client"))
        node = sidecar_config.NodeConfig.model_validate_json(cm["data"]["node.json"])
        (vlan_cfg,) = node.vlans
        assert (vlan_cfg.label, vlan_cfg.creator, vlan_cfg.security) == (
            "lab",
            authority.public_hex,
            "open",
        )
        assert vlan_cfg.credential is None
        assert vlan_cfg.interface.name == "pt-lab"
        assert vlan_cfg.interface.address == "10.250.0.1/24"
        assert vlan_cfg.interface.mac == members[0]["mac"]
        assert vlan_cfg.interface.mtu == 1400

        # The credential is signed by the authority for the pod's node key.
        from peertap.operator import credentials

        secrets = _secrets(emulator)
        node_key = identity.from_pem(_decoded(secrets["peertap-m-lab-client-node"], "node.key"))
        cred = _decoded(secrets["peertap-m-lab-client-cred"], "lab.cred.json").decode()
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
        relay_key = identity.from_pem(_decoded(_secrets(emulator)["campus-relay-key"], "node.key"))
        assert all(a.endswith(f"/p2p/{relay_key.peer_id}") for a in mvlan)
        assert "campus-relay" in emulator.objects("apps/v1/deployments", NS)
        assert "campus-relay" in emulator.objects("v1/services", NS)
        # Members bootstrap from the relay named by mvlanRef.
        wait_for(
            "bootstrap from the relay",
            lambda: (
                set(mvlan)
                <= set(
                    json.loads(_configmaps(emulator)["peertap-m-lab-client"]["data"]["node.json"])[
                        "bootstrap"
                    ]
                )
            ),
        )

        # Everything the operator wrote is a valid Kubernetes object.
        for resource in ("v1/secrets", "v1/configmaps", "v1/services", "apps/v1/deployments"):
            for obj in emulator.objects(resource, NS).values():
                kubernetes_validate.validate(obj, "1.31", strict=True)

        # The member turns ready when its sidecar container reports ready.
        kubectl(
            "patch",
            "pod",
            "lab-client",
            "-n",
            NS,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"containerStatuses": [{"name": "peertap", "ready": True}]}}),
        )
        wait_for("member ready", lambda: _members(emulator)[0]["ready"])
        assert _condition(_vlan(emulator), "Ready")["message"] == "1 members, 1 ready"  # type: ignore[index]

        # kubectl resolves the short name; the emulator has no server-side table printing.
        assert kubectl("get", "cvlan", "lab", "-n", NS, "-o", "jsonpath={.status.vlanId}") == vlan


def test_restart_reuses_keys_and_addresses_without_duplicates(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "cryptovlan.yaml", EXAMPLES / "mvlan.yaml")
    kubectl.apply_text(_pod("a", {"app": "lab-node"}) + "---\n" + _pod("b", {"app": "lab-node"}))
    with operator_factory() as first:
        wait_for("two members", lambda: len(_members(emulator)) == 2)
        wait_for("relay key", lambda: "campus-relay-key" in _secrets(emulator))
        before_secrets = _secrets(emulator)
        before_members = _members(emulator)
        first_ca = first.ca_pem
    with operator_factory() as second:
        assert second.ca_pem == first_ca
        kubectl.apply_text(_pod("c", {"peertap.io/vlans": "lab"}))
        wait_for("three members", lambda: len(_members(emulator)) == 3)
        after_secrets = _secrets(emulator)
        after_members = _members(emulator)
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
    kubectl.apply_text(_pod("a", {"app": "lab-node"}) + "---\n" + _pod("b", {"app": "lab-node"}))
    with operator_factory():
        wait_for("two members", lambda: len(_members(emulator)) == 2)
        kubectl("delete", "pod", "a", "-n", NS, "--wait=false")
        wait_for("member a gone", lambda: [m["pod"] for m in _members(emulator)] == ["b"])
        wait_for(
            "pod a's objects deleted",
            lambda: (
                not {"peertap-m-a-node", "peertap-m-a-cred"} & set(_secrets(emulator))
                and "peertap-m-a" not in _configmaps(emulator)
            ),
        )
        allocations = json.loads(_configmaps(emulator)["lab-vlan"]["data"]["allocations.json"])
        assert sorted(allocations) == ["b"]
        # The released address goes to the next pod.
        kubectl.apply_text(_pod("c", {"app": "lab-node"}))
        members = wait_for("member c", lambda: len(_members(emulator)) == 2 and _members(emulator))
        assert {m["pod"]: m["address"] for m in members} == {
            "b": "10.250.0.2/24",
            "c": "10.250.0.1/24",
        }


def test_vlan_deletion_runs_the_finalizer_cleanup(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "cryptovlan.yaml")
    kubectl.apply_text(_pod("a", {"app": "lab-node"}))
    with operator_factory():
        wait_for("member", lambda: _members(emulator))
        assert "peertap.io/cleanup" in _vlan(emulator)["metadata"]["finalizers"]
        kubectl("delete", "cvlan", "lab", "-n", NS, "--wait=false")
        wait_for("CryptoVLAN gone", lambda: not _vlan(emulator))
        leftovers = {
            n
            for n in [*_secrets(emulator), *_configmaps(emulator)]
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
        cond = wait_for("SpecValid", lambda: _condition(_vlan(emulator, "broken"), "SpecValid"))
        assert cond["status"] == "False"
        assert cond["reason"] == "InvalidSubnet"
        assert "10.250.0.7/24" in cond["message"]
        # The healthy VLAN next to it still works, and a label change is refused.
        wait_for("lab served", lambda: _vlan(emulator).get("status", {}).get("vlanId"))
        vlan_id = _vlan(emulator)["status"]["vlanId"]
        kubectl("patch", "cvlan", "lab", "-n", NS, "--type=merge", "-p", '{"spec":{"label":"x"}}')
        cond = wait_for(
            "LabelImmutable",
            lambda: (
                (c := _condition(_vlan(emulator), "SpecValid"))
                and c["reason"] == "LabelImmutable"
                and c
            ),
        )
        assert "last valid spec stays in force" in cond["message"]
        assert _vlan(emulator)["status"]["vlanId"] == vlan_id


def _https(port: int, ca_pem: bytes, path: str, body: dict[str, Any]) -> dict[str, Any]:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    conn = http.client.HTTPSConnection(
        "peertap-operator.peertap-system.svc", port, context=ctx, timeout=10
    )

    def connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        return socket.create_connection(("127.0.0.1", address[1]), *args, **kwargs)

    conn._create_connection = connect  # type: ignore[attr-defined]
    try:
        conn.request(
            "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        assert response.status == 200
        return dict(json.loads(response.read()))
    finally:
        conn.close()


def _review(obj: dict[str, Any], *, kind: str, operation: str = "CREATE", old: Any = None) -> Any:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0f6c-test",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "operation": operation,
            "namespace": NS,
            "object": obj,
            "oldObject": old,
        },
    }


def _started(op: RunningOperator) -> tuple[int, bytes]:
    return op.ports["webhook"], op.ca_pem


def test_webhooks_answer_admission_reviews_over_https(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "cryptovlan.yaml")
    with operator_factory() as op:
        port, ca = _started(op)
        # The CA is published into both webhook configurations and kept in the Secret.
        for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
            config = emulator.objects(f"admissionregistration.k8s.io/v1/{plural}")[WEBHOOK_CONFIG]
            assert base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"]) == ca
        ns, name = CERT_SECRET.split("/")
        assert base64.b64decode(emulator.objects("v1/secrets", ns)[name]["data"]["ca.crt"]) == ca

        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"generateName": "web-", "labels": {"app": "lab-node"}},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]},
        }
        answer = _https(port, ca, "/mutate-pods", _review(pod, kind="Pod"))["response"]
        assert answer["uid"] == "0f6c-test" and answer["allowed"] is True
        assert answer["patchType"] == "JSONPatch"
        ops = json.loads(base64.b64decode(answer["patch"]))
        by_path = {o["path"]: o["value"] for o in ops}
        sidecar = by_path["/spec/containers/-"]
        assert sidecar["name"] == "peertap"
        assert sidecar["image"] == "registry.example/peertap:test"
        assert sidecar["command"] == ["peertap", "run", "--config", "/etc/peertap/node.json"]
        assert sidecar["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"]
        assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 9464}
        assert {e["name"] for e in sidecar["env"]} == {"POD_NAME", "POD_NAMESPACE", "NODE_NAME"}
        key = by_path["/metadata/annotations/peertap.io~1member"]
        volumes = {v["name"]: v for v in by_path["/spec/volumes"]}
        assert volumes["peertap-tun"]["hostPath"]["path"] == "/dev/net/tun"
        sources = volumes["peertap-config"]["projected"]["sources"]
        assert sources == [
            {"configMap": {"name": f"peertap-m-{key}"}},
            {"secret": {"name": f"peertap-m-{key}-node"}},
            {"secret": {"name": f"peertap-m-{key}-cred"}},
        ]

        # The pod as admitted gets exactly the objects its projected volume names.
        admitted = jsonpatch.apply_patch({**pod, "metadata": {**pod["metadata"]}}, ops)
        admitted["metadata"]["name"] = "web-x1"
        del admitted["metadata"]["generateName"]
        kubectl.apply_text(yaml.safe_dump(admitted))
        for source in sources:
            ((kind, ref),) = source.items()
            store = _configmaps if kind == "configMap" else _secrets
            wait_for(f"{kind} {ref['name']}", lambda s=store, n=ref["name"]: n in s(emulator))
        node_json = _configmaps(emulator)[f"peertap-m-{key}"]["data"]["node.json"]
        assert sidecar_config.NodeConfig.model_validate_json(node_json).vlans[0].label == "lab"
        assert [m["pod"] for m in _members(emulator)] == ["web-x1"]

        # A pod no VLAN selects is left alone.
        plain = {**pod, "metadata": {"name": "other", "labels": {"app": "web"}}}
        answer = _https(port, ca, "/mutate-pods", _review(plain, kind="Pod"))["response"]
        assert answer["allowed"] is True and "patch" not in answer

        # Validation: a bad CIDR and a label change are denied with clear messages.
        vlan = yaml.safe_load((EXAMPLES / "cryptovlan.yaml").read_text())
        bad = json.loads(json.dumps(vlan))
        bad["spec"]["interface"]["ipam"]["subnet"] = "10.0.0.0/33"
        answer = _https(port, ca, "/validate-cryptovlans", _review(bad, kind="CryptoVLAN"))
        assert answer["response"]["allowed"] is False
        assert "10.0.0.0/33" in answer["response"]["status"]["message"]
        relabel = json.loads(json.dumps(vlan))
        relabel["spec"]["label"] = "other"
        answer = _https(
            port,
            ca,
            "/validate-cryptovlans",
            _review(relabel, kind="CryptoVLAN", operation="UPDATE", old=vlan),
        )
        assert answer["response"]["allowed"] is False
        assert "immutable" in answer["response"]["status"]["message"]
        answer = _https(port, ca, "/validate-cryptovlans", _review(vlan, kind="CryptoVLAN"))
        assert answer["response"]["allowed"] is True
        mvlan = yaml.safe_load((EXAMPLES / "mvlan.yaml").read_text())
        mvlan["spec"]["relays"]["serviceType"] = "Magic"
        answer = _https(port, ca, "/validate-mvlans", _review(mvlan, kind="MVLAN"))
        assert answer["response"]["allowed"] is False
        assert "serviceType" in answer["response"]["status"]["message"]


def test_health_and_metrics_endpoints_serve(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "cryptovlan.yaml", EXAMPLES / "pod.yaml")
    with operator_factory() as op:
        wait_for("member", lambda: _members(emulator))
        with urllib.request.urlopen(f"http://127.0.0.1:{op.ports['health']}/healthz") as r:
            assert json.loads(r.read())["ok"] is True
        with urllib.request.urlopen(f"http://127.0.0.1:{op.ports['metrics']}/metrics") as r:
            text = r.read().decode()
        assert 'peertap_operator_vlan_members{cryptovlan="lab",namespace="default"} 1.0' in text
        assert "peertap_operator_reconciles_total" in text


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
                (c := _condition(_vlan(emulator), "SpecValid"))
                and c["reason"] == "AuthorityUnreadable"
                and c
            ),
        )
        assert "lab-authority" in cond["message"]
        assert not _vlan(emulator)["status"]["vlanId"]
        # Deleting the broken Secret lets the next reconcile make a fresh key.
        kubectl("delete", "secret", "lab-authority", "-n", NS)
        kubectl.apply_text(_pod("a", {"app": "lab-node"}))
        wait_for("served", lambda: _members(emulator))
        assert _condition(_vlan(emulator), "SpecValid")["status"] == "True"  # type: ignore[index]


def test_webhook_serves_a_certificate_from_the_tls_dir_and_no_webhook_serves_none(
    emulator: EmulatorThread,
    kubectl: Kubectl,
    operator_factory: OperatorFactory,
    tmp_path: Path,
) -> None:
    names = webhook_tls.dns_names("peertap-operator.peertap-system")
    bundle = webhook_tls.generate(names, now=reconcile.utcnow())
    (tmp_path / "ca.crt").write_bytes(bundle.ca_pem)
    (tmp_path / "tls.crt").write_bytes(bundle.cert_pem)
    (tmp_path / "tls.key").write_bytes(bundle.key_pem)
    with operator_factory(webhook_tls_dir=str(tmp_path)) as op:
        review = _review({"metadata": {"name": "x"}}, kind="Pod")
        answer = _https(op.ports["webhook"], bundle.ca_pem, "/mutate-pods", review)
        assert answer["response"]["allowed"] is True
        hooks = emulator.objects("admissionregistration.k8s.io/v1/mutatingwebhookconfigurations")
        published = hooks[WEBHOOK_CONFIG]["webhooks"][0]["clientConfig"]["caBundle"]
        assert base64.b64decode(published) == bundle.ca_pem
    ns, name = CERT_SECRET.split("/")
    assert name not in emulator.objects("v1/secrets", ns)
    with operator_factory(no_webhook=True) as op:
        assert "webhook" not in op.ports and "health" in op.ports
