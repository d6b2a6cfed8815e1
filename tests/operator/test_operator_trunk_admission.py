"""Credential admission end to end: the real operator (kopf) against the emulated API, driven
with the real kubectl. Members and MVLAN relays get node credentials from the VLAN
authorities and configs that admit exactly the nodes those authorities vouched for."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from typing import Any

import emulated as em
import pytest
import yaml
from emulated import EXAMPLES, NS
from kube_emulator import EmulatorThread
from operator_harness import Kubectl, OperatorFactory, wait_for

from peertap.operator import credentials
from peertap.sidecar import admission, identity
from peertap.sidecar import config as sc
from peertap.sidecar.admission.credential import from_text
from peertap.sidecar.private import authority

RESYNC = 0.3


def cryptovlan_yaml(name: str, **spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "peertap.io/v1alpha1",
            "kind": "CryptoVLAN",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def authorities(emulator: EmulatorThread, *vlans: str) -> dict[str, identity.Identity]:
    found = em.secrets(emulator)
    return {
        v: identity.from_pem(em.decoded(found[f"{v}-authority"], "authority.key")) for v in vlans
    }


def node_config(emulator: EmulatorThread, configmap: str) -> sc.NodeConfig | None:
    cm = em.configmaps(emulator).get(configmap)
    if cm is None:
        return None
    return sc.NodeConfig.model_validate_json(cm["data"]["node.json"])


def secret_files(emulator: EmulatorThread, name: str) -> dict[str, str]:
    secret = em.secrets(emulator).get(name) or {}
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def assert_vouched(
    text: str, *, by: identity.Identity, node_key: identity.Identity, name: str
) -> admission.NodeCredential:
    cred = from_text(text)
    admission.verify(
        cred,
        authorities=frozenset({by.public_bytes}),
        now=time.time(),
        node_key=node_key.public_bytes,
    )
    assert cred.identity == name
    return cred


def relay_admits(emulator: EmulatorThread, vlans: list[str]) -> bool:
    """The relays' config and credentials name exactly `vlans`' authorities."""
    cfg = node_config(emulator, "campus-relay")
    files = secret_files(emulator, "campus-relay-cred")
    if cfg is None or sorted(files) != [f"{v}.node.cred" for v in vlans]:
        return False
    if not vlans:
        return (cfg.admission_mode, cfg.admission.peers) == ("peers", [])
    keys = authorities(emulator, *vlans)
    return cfg.admission_mode == "credential" and cfg.admission.authorities == sorted(
        k.public_hex for k in keys.values()
    )


def test_members_and_relays_hold_credentials_of_their_vlans_and_follow_changes(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "mvlan.yaml", EXAMPLES / "cryptovlan.yaml")
    kubectl.apply_text(cryptovlan_yaml("web", mvlanRef={"name": "campus"}))
    kubectl.apply_text(cryptovlan_yaml("solo", security="public"))
    kubectl.apply_text(
        em.pod_yaml("a", {"peertap.io/vlans": "lab"})
        + "---\n"
        + em.pod_yaml("b", {"peertap.io/vlans": "lab_web_solo"})
    )
    with operator_factory(resync_interval=RESYNC):
        wait_for(
            "members' configs",
            lambda: all(
                (cfg := node_config(emulator, f"peertap-m-{p}")) and len(cfg.vlans) == n
                for p, n in (("a", 1), ("b", 3))
            ),
        )
        keys = authorities(emulator, "lab", "web", "solo")
        for pod, vlans in (("a", ["lab"]), ("b", ["lab", "solo", "web"])):
            cfg = node_config(emulator, f"peertap-m-{pod}")
            assert cfg is not None
            assert cfg.admission_mode == "credential"
            assert cfg.admission.authorities == sorted(keys[v].public_hex for v in vlans)
            assert cfg.admission.credentials == [f"{v}.node.cred" for v in vlans]
            node_key = identity.from_pem(
                em.decoded(em.secrets(emulator)[f"peertap-m-{pod}-node"], "node.key")
            )
            files = secret_files(emulator, f"peertap-m-{pod}-cred")
            for vlan in vlans:
                assert_vouched(
                    files[f"{vlan}.node.cred"], by=keys[vlan], node_key=node_key, name=f"{NS}/{pod}"
                )
            # Pod a holds lab's credential only: web's authority does not vouch for it.
            if pod == "a":
                with pytest.raises(authority.WrongAuthority):
                    admission.verify(
                        from_text(files["lab.node.cred"]),
                        authorities=frozenset({keys["web"].public_bytes}),
                        now=time.time(),
                    )

        # The relay holds credentials from every CryptoVLAN naming its MVLAN, not from solo.
        wait_for("relay admits lab and web", lambda: relay_admits(emulator, ["lab", "web"]))
        relay_key = identity.from_pem(
            em.decoded(em.secrets(emulator)["campus-relay-key"], "node.key")
        )
        files = secret_files(emulator, "campus-relay-cred")
        for vlan in ("lab", "web"):
            assert_vouched(
                files[f"{vlan}.node.cred"],
                by=keys[vlan],
                node_key=relay_key,
                name=f"{NS}/campus-relay",
            )
        deployment = emulator.objects("apps/v1/deployments", NS)["campus-relay"]
        sources = deployment["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
        assert {"secret": {"name": "campus-relay-cred"}} in sources

        # web stops naming the MVLAN, then lab goes: credentials and config follow.
        kubectl(
            "patch", "cvlan", "web", "-n", NS, "--type=json",
            "-p", json.dumps([{"op": "remove", "path": "/spec/mvlanRef"}]),
        )  # fmt: skip
        wait_for("relay admits lab only", lambda: relay_admits(emulator, ["lab"]))
        kubectl("delete", "cvlan", "lab", "-n", NS, "--wait=false")
        wait_for("relay admits bootstrap peers only", lambda: relay_admits(emulator, []))
        cfg = wait_for(
            "pod b without lab",
            lambda: (c := node_config(emulator, "peertap-m-b")) and len(c.vlans) == 2 and c,
        )
        assert cfg.admission.authorities == sorted(keys[v].public_hex for v in ("solo", "web"))
        assert sorted(secret_files(emulator, "peertap-m-b-cred")) == [
            "solo.cred.json",
            "solo.node.cred",
            "web.cred.json",
            "web.node.cred",
        ]


def expiring(auth: identity.Identity, node: identity.Identity, name: str) -> str:
    """A node credential with an hour left: the operator must renew it."""
    now = dt.datetime.now(dt.UTC)
    cred = admission.issue(
        authority=auth,
        node_key=node.public_bytes,
        identity=name,
        not_before=now - credentials.VALIDITY + dt.timedelta(hours=1),
        not_after=now + dt.timedelta(hours=1),
    )
    return admission.to_text(cred)


def test_expiring_node_credentials_of_members_and_relays_are_reissued(
    emulator: EmulatorThread, kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl.apply(EXAMPLES / "mvlan.yaml", EXAMPLES / "cryptovlan.yaml")
    kubectl.apply_text(em.pod_yaml("a", {"peertap.io/vlans": "lab"}))
    with operator_factory(resync_interval=RESYNC):
        wait_for(
            "member credential",
            lambda: "lab.node.cred" in secret_files(emulator, "peertap-m-a-cred"),
        )
        wait_for("relay credential", lambda: relay_admits(emulator, ["lab"]))
        lab = authorities(emulator, "lab")["lab"]
        secrets = em.secrets(emulator)
        holders = {
            "peertap-m-a-cred": (
                identity.from_pem(em.decoded(secrets["peertap-m-a-node"], "node.key")),
                f"{NS}/a",
            ),
            "campus-relay-cred": (
                identity.from_pem(em.decoded(secrets["campus-relay-key"], "node.key")),
                f"{NS}/campus-relay",
            ),
        }
        planted = {}
        for secret, (node, name) in holders.items():
            planted[secret] = expiring(lab, node, name)
            data = {"lab.node.cred": base64.b64encode(planted[secret].encode()).decode()}
            kubectl(
                "patch", "secret", secret, "-n", NS, "--type=merge",
                "-p", json.dumps({"data": data}),
            )  # fmt: skip
        for secret, (node, name) in holders.items():
            text = wait_for(
                f"{secret} renewed",
                lambda s=secret: (
                    (t := secret_files(emulator, s).get("lab.node.cred")) != planted[s] and t
                ),
            )
            cred = assert_vouched(text, by=lab, node_key=node, name=name)
            assert (
                cred.not_after - time.time()
                > (credentials.VALIDITY - credentials.RENEW_BEFORE).total_seconds()
            )
