"""The operator's HTTPS admission webhooks, health and metrics endpoints, over real sockets."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import urllib.request
from pathlib import Path
from typing import Any

import emulated as em
import jsonpatch
import yaml
from emulated import EXAMPLES, NS
from kube_emulator import EmulatorThread
from operator_harness import (
    CERT_SECRET,
    WEBHOOK_CONFIG,
    Kubectl,
    OperatorFactory,
    RunningOperator,
    wait_for,
)

from peertap.operator import reconcile, webhook_tls
from peertap.sidecar import config as sidecar_config


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
        (sidecar,) = by_path["/spec/initContainers"]
        assert sidecar["name"] == "peertap" and sidecar["restartPolicy"] == "Always"
        assert sidecar["image"] == "registry.example/peertap:test"
        assert sidecar["command"][-4:] == ["peertap", "run", "--config", "/etc/peertap/node.json"]
        assert sidecar["securityContext"]["capabilities"]["add"] == [
            "NET_ADMIN",
            "SETGID",
            "SETUID",
        ]
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
            store = em.configmaps if kind == "configMap" else em.secrets
            wait_for(f"{kind} {ref['name']}", lambda s=store, n=ref["name"]: n in s(emulator))
        node_json = em.configmaps(emulator)[f"peertap-m-{key}"]["data"]["node.json"]
        assert sidecar_config.NodeConfig.model_validate_json(node_json).vlans[0].label == "lab"
        # The member list in the CryptoVLAN's status is patched after the pod's objects.
        wait_for(
            "web-x1 in the CryptoVLAN's members",
            lambda: [m["pod"] for m in em.members(emulator)] == ["web-x1"],
        )

        # A pod no VLAN selects is left alone.
        plain = {**pod, "metadata": {"name": "other", "labels": {"app": "web"}}}
        answer = _https(port, ca, "/mutate-pods", _review(plain, kind="Pod"))["response"]
        assert answer["allowed"] is True and "patch" not in answer

        # A pod labelled for a CryptoVLAN that does not exist is refused, naming it: it would
        # wait for a config nobody writes.
        lost = {**pod, "metadata": {"name": "lost", "labels": {"peertap.io/vlans": "lab_nope"}}}
        answer = _https(port, ca, "/mutate-pods", _review(lost, kind="Pod"))["response"]
        assert answer["allowed"] is False and "nope" in answer["status"]["message"]

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
        # A second VLAN whose interface name the first (in the cluster) already uses.
        twin = json.loads(json.dumps(vlan))
        twin["metadata"]["name"] = "twin"
        twin["spec"]["interface"]["name"] = "pt-lab"
        answer = _https(port, ca, "/validate-cryptovlans", _review(twin, kind="CryptoVLAN"))
        assert answer["response"]["allowed"] is False
        assert "pt-lab" in answer["response"]["status"]["message"]
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
        wait_for("member", lambda: em.members(emulator))
        with urllib.request.urlopen(f"http://127.0.0.1:{op.ports['health']}/healthz") as r:
            assert json.loads(r.read())["ok"] is True
        with urllib.request.urlopen(f"http://127.0.0.1:{op.ports['metrics']}/metrics") as r:
            text = r.read().decode()
        assert 'peertap_operator_vlan_members{cryptovlan="lab",namespace="default"} 1.0' in text
        assert "peertap_operator_reconciles_total" in text


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
