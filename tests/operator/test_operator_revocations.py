"""spec.revokedMembers: which keys the signed revocation list holds, when it is re-signed,
and what members and revoked pods get (pure decisions; the list is the sidecar's format,
checked with the sidecar's own loader)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from operator_harness import Kubectl, OperatorFactory, wait_for

from peertap.operator import membership, models, revocations
from peertap.sidecar import config as sc
from peertap.sidecar import identity
from peertap.sidecar.private import revocation

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def key(n: int) -> identity.Identity:
    return identity.Identity(Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32))


AUTHORITY = key(200)
KEYS = {"a": key(1), "b": key(2), "c": key(3)}


def _decide(entries: list[str], previous: revocations.Stored, **kw: object) -> revocations.Decision:
    args: dict[str, object] = {
        "entries": entries,
        "pod_keys": {p: k.public_hex for p, k in KEYS.items()},
        "previous": previous,
        "authority": AUTHORITY,
        "label": "lab",
        **kw,
    }
    return revocations.decide(**args)  # type: ignore[arg-type]


def pod_yaml(name: str, labels: dict[str, str]) -> str:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
    }
    return str(yaml.safe_dump(pod))


def _load(stored: revocations.Stored) -> revocation.RevocationList:
    return revocation.load_revocation_list(stored.text.encode(), AUTHORITY.public_bytes, "lab")


def test_pod_names_and_keys_become_a_signed_list_re_signed_only_when_keys_change() -> None:
    raw = "ee" * 32
    first = _decide(["b", raw, "ghost"], revocations.Stored())
    assert first.unresolved == ["ghost"]
    lst = _load(first.stored)
    assert lst.version == 1
    assert lst.revoked == {KEYS["b"].public_bytes, bytes.fromhex(raw)}
    # Same keys: the same signed list, same version.
    again = _decide([raw, "b"], first.stored)
    assert again.stored.text == first.stored.text and again.stored.version == 1
    # b's pod is gone (no key known any more): its recorded key stays revoked.
    gone = _decide(["b", raw], first.stored, pod_keys={})
    assert gone.stored.keys == first.stored.keys
    # Un-revoking b is a new version without its key.
    fewer = _decide([raw], first.stored)
    assert _load(fewer.stored).version == 2
    assert _load(fewer.stored).revoked == {bytes.fromhex(raw)}
    # Without the authority key nothing is signed: the last list stays.
    frozen = _decide(["a", "b", raw], first.stored, authority=None)
    assert frozen.stored == first.stored
    # The state round-trips through the VLAN's ConfigMap.
    assert revocations.parse(revocations.to_data(first.stored)) == first.stored
    assert revocations.parse({"revocations.json": "{not json"}) == revocations.Stored()


def _view(spec: dict[str, object], stored: revocations.Stored | None = None) -> membership.VlanView:
    return membership.VlanView(
        name="lab",
        generation=1,
        raw_spec=spec,
        annotations={},
        status=models.CryptoVLANStatus(),
        authority=AUTHORITY,
        stored=membership.StoredVlan(
            spec=None, allocations={}, revocations=stored or revocations.Stored()
        ),
    )


def _plan(spec: dict[str, object], stored: revocations.Stored | None = None) -> membership.Plan:
    pods = [
        membership.PodView(name=p, uid=p, labels={"peertap.io/vlans": "lab"}, annotations={})
        for p in KEYS
    ]
    return membership.decide(
        membership.Inputs(
            namespace="ns",
            vlans=[_view(spec, stored)],
            pods=pods,
            members={p: membership.MemberObjects(node_key=k) for p, k in KEYS.items()},
            now=NOW,
        ),
        new_identity=lambda: key(99),
    )


def test_revoked_pods_leave_and_the_others_get_the_list_their_config_names() -> None:
    plan = _plan({"revokedMembers": ["c"]})
    (vp,) = plan.vlans
    assert [m.key for m in plan.members] == ["a", "b"]
    assert plan.delete_members == ["c"]
    assert [m.pod for m in vp.status.members] == ["a", "b"]
    ready = next(c for c in vp.status.conditions if c.type == "Ready")
    assert "revoked: c" in ready.message
    for mp in plan.members:
        (vcfg,) = sc.NodeConfig.model_validate_json(mp.config).vlans
        assert vcfg.revocations == "lab.revocations"
        lst = revocation.load_revocation_list(
            mp.files["lab.revocations"].encode(), AUTHORITY.public_bytes, "lab"
        )
        assert lst.revoked == {KEYS["c"].public_bytes}
    assert json.loads(vp.configmap["revocations.json"])["version"] == 1  # type: ignore[index]


def test_without_revocations_members_name_the_file_but_get_none() -> None:
    plan = _plan({})
    for mp in plan.members:
        (vcfg,) = sc.NodeConfig.model_validate_json(mp.config).vlans
        assert vcfg.revocations == "lab.revocations"
        assert mp.files == {}


@pytest.mark.parametrize("security", ["public", "open"])
def test_revocations_need_a_private_vlan(security: str) -> None:
    (vp,) = _plan({"security": security, "revokedMembers": ["c"]}).vlans
    spec_valid = next(c for c in vp.status.conditions if c.type == "SpecValid")
    assert spec_valid.reason == "InvalidRevocation"


def test_the_operator_publishes_the_list_when_a_pod_is_revoked(
    kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    vlan = {
        "apiVersion": "peertap.io/v1alpha1",
        "kind": "CryptoVLAN",
        "metadata": {"name": "lab"},
        "spec": {
            "security": "mls",
            "interface": {"ipam": {"subnet": "10.251.9.0/24"}},
            "mvlanRef": {"name": "campus"},
        },
    }
    mvlan = {
        "apiVersion": "peertap.io/v1alpha1",
        "kind": "MVLAN",
        "metadata": {"name": "campus"},
        "spec": {"relays": {"replicas": 1, "serviceType": "ClusterIP"}},
    }
    kubectl.apply_text(yaml.safe_dump(mvlan))
    kubectl.apply_text(yaml.safe_dump(vlan))
    kubectl.apply_text("---\n".join(pod_yaml(p, {"peertap.io/vlans": "lab"}) for p in "abc"))

    def get(kind: str, name: str) -> dict[str, Any] | None:
        out = kubectl("get", kind, name, "-n", "default", "-o", "json", "--ignore-not-found")
        return json.loads(out) if out.strip() else None

    with operator_factory():
        node_c = wait_for("c's node key", lambda: get("secret", "peertap-m-c-node"))
        c_key = identity.from_pem(base64.b64decode(node_c["data"]["node.key"])).public_bytes
        authority = identity.from_pem(
            base64.b64decode(get("secret", "lab-authority")["data"]["authority.key"])  # type: ignore[index]
        )
        patch = {"spec": {"revokedMembers": ["c"]}}
        kubectl(
            "patch",
            "cryptovlans.peertap.io",
            "lab",
            "-n",
            "default",
            "--type=merge",
            "-p",
            json.dumps(patch),
        )
        for pod in "ab":
            cm = wait_for(
                f"{pod}'s list",
                lambda pod=pod: (
                    (c := get("configmap", f"peertap-m-{pod}"))
                    and "lab.revocations" in c["data"]
                    and c
                ),
            )
            lst = revocation.load_revocation_list(
                cm["data"]["lab.revocations"].encode(), authority.public_bytes, "lab"
            )
            assert lst.revoked == {c_key}
            (vcfg,) = sc.NodeConfig.model_validate_json(cm["data"]["node.json"]).vlans
            assert vcfg.revocations == "lab.revocations"
        # The relays get it too (they spread it to members that missed it), as a file
        # their config names.
        relay_cm = wait_for(
            "the relays' list",
            lambda: (
                (c := get("configmap", "campus-relay")) and "lab.revocations" in c["data"] and c
            ),
        )
        lst = revocation.load_revocation_list(
            relay_cm["data"]["lab.revocations"].encode(), authority.public_bytes, "lab"
        )
        assert lst.revoked == {c_key}
        relay_cfg = sc.NodeConfig.model_validate_json(relay_cm["data"]["node.json"])
        assert [(r.creator, r.label, r.file) for r in relay_cfg.relay.revocations] == [
            (authority.public_hex, "lab", "lab.revocations")
        ]
        # c is no member any more: its objects are gone, the status no longer lists it.
        wait_for("c released", lambda: get("configmap", "peertap-m-c") is None)
        members = get("cryptovlans.peertap.io", "lab")["status"]["members"]  # type: ignore[index]
        assert [m["pod"] for m in members] == ["a", "b"]
