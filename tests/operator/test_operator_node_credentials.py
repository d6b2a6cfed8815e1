"""Node credentials for trunk admission: issue and renewal policy, what members and relays
render, and that the sidecar's own admission policy refuses what the operator did not vouch for."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peertap.operator import credentials, membership, models, node_credentials, relay, render
from peertap.sidecar import admission, identity, ids, wire
from peertap.sidecar import config as sc
from peertap.sidecar.admission.credential import from_text
from peertap.sidecar.private import authority

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def key(n: int) -> identity.Identity:
    return identity.Identity(Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32))


LAB, WEB, MALLORY_AUTHORITY = key(201), key(202), key(203)
NODE, MALLORY = key(1), key(2)


def _issue(auth: identity.Identity = LAB, node: identity.Identity = NODE) -> str:
    return node_credentials.issue(
        authority_key=auth, node_key=node.public_bytes, node_identity="ns/p", now=NOW
    )


def test_issued_credential_verifies_with_the_sidecar_for_the_node_key() -> None:
    cred = from_text(_issue())
    admission.verify(
        cred,
        authorities=frozenset({LAB.public_bytes}),
        now=NOW.timestamp(),
        node_key=NODE.public_bytes,
    )
    assert (cred.identity, cred.authority) == ("ns/p", LAB.public_bytes)
    assert cred.not_after - NOW.timestamp() == credentials.VALIDITY.total_seconds()
    assert cred.not_before < NOW.timestamp()


def test_a_credential_of_one_vlan_authority_does_not_verify_under_another() -> None:
    with pytest.raises(authority.WrongAuthority):
        admission.verify(
            from_text(_issue(LAB)), authorities=frozenset({WEB.public_bytes}), now=NOW.timestamp()
        )


@pytest.mark.parametrize(
    ("change", "renew"),
    [
        ({}, False),
        ({"node_identity": "ns/q"}, True),
        ({"node_key": MALLORY.public_bytes}, True),
        ({"authority_hex": WEB.public_hex}, True),
        ({"now": NOW + dt.timedelta(hours=7)}, False),
        ({"now": NOW + dt.timedelta(hours=9)}, True),
        ({"now": NOW + dt.timedelta(hours=13)}, True),
    ],
)
def test_needs_renewal(change: dict[str, Any], renew: bool) -> None:
    kwargs: dict[str, Any] = {
        "authority_hex": LAB.public_hex,
        "node_key": NODE.public_bytes,
        "node_identity": "ns/p",
        "now": NOW,
        **change,
    }
    assert node_credentials.needs_renewal(_issue(), **kwargs) is renew
    assert node_credentials.needs_renewal(None, **kwargs) is True
    assert node_credentials.needs_renewal("garbage", **kwargs) is True


def test_holdings_keep_good_credentials_renew_expiring_ones_and_drop_gone_vlans() -> None:
    first = node_credentials.holdings(
        {},
        authorities={"lab": LAB, "web": WEB},
        node_key=NODE.public_bytes,
        node_identity="ns/p",
        now=NOW,
    )
    assert sorted(first) == ["lab.node.cred", "web.node.cred"]
    same = node_credentials.holdings(
        {**first, "old.node.cred": "x"},
        authorities={"lab": LAB, "web": WEB},
        node_key=NODE.public_bytes,
        node_identity="ns/p",
        now=NOW + dt.timedelta(hours=1),
    )
    assert same == first
    later = NOW + dt.timedelta(hours=9)
    renewed = node_credentials.holdings(
        first, authorities={"lab": LAB}, node_key=NODE.public_bytes, node_identity="ns/p", now=later
    )
    assert list(renewed) == ["lab.node.cred"]
    assert renewed["lab.node.cred"] != first["lab.node.cred"]
    assert from_text(renewed["lab.node.cred"]).not_after > later.timestamp() + 11 * 3600


def test_admission_renders_credential_mode_or_bootstrap_only_peers_mode() -> None:
    cfg = render.admission({"lab": LAB.public_hex, "web": WEB.public_hex})
    assert cfg.mode == "credential"
    assert cfg.authorities == sorted([LAB.public_hex, WEB.public_hex])
    assert cfg.credentials == ["lab.node.cred", "web.node.cred"]
    # One credential per authority, and never more than an INTRO carries.
    many = {f"v{i:02}": key(100 + i).public_hex for i in range(12)}
    cfg = render.admission({**many, "w": key(100).public_hex})
    assert len(cfg.credentials) == wire.MAX_INTRO_CREDENTIALS
    assert "w.node.cred" not in cfg.credentials
    assert len(cfg.authorities) == 12
    assert render.admission({}) == sc.AdmissionConfig(mode="peers", peers=[])


def _vlan(name: str, auth: identity.Identity, spec: dict[str, Any]) -> membership.VlanView:
    return membership.VlanView(
        name=name,
        generation=1,
        raw_spec=spec,
        annotations={},
        status=models.CryptoVLANStatus(),
        authority=auth,
        stored=membership.StoredVlan(spec=None, allocations={}),
    )


def _plan(members: dict[str, membership.MemberObjects], now: dt.datetime) -> membership.Plan:
    pods = [
        membership.PodView(name=n, uid=n, labels={"peertap.io/vlans": v}, annotations={})
        for n, v in (("a", "lab"), ("b", "lab_web"))
    ]
    inputs = membership.Inputs(
        namespace="ns",
        vlans=[_vlan("lab", LAB, {"security": "public"}), _vlan("web", WEB, {})],
        pods=pods,
        members=members,
        now=now,
    )
    return membership.decide(inputs, new_identity=lambda: key(50))


def test_members_render_credential_admission_with_their_vlans_authorities() -> None:
    members = {"a": membership.MemberObjects(node_key=NODE), "b": membership.MemberObjects(key(3))}
    plan = _plan(members, NOW)
    by_pod = {m.pod.name: m for m in plan.members}
    for pod, vlans in (("a", {"lab": LAB}), ("b", {"lab": LAB, "web": WEB})):
        mp = by_pod[pod]
        cfg = sc.NodeConfig.model_validate_json(mp.config)
        assert cfg.admission_mode == "credential"
        assert cfg.admission.authorities == sorted(k.public_hex for k in vlans.values())
        assert cfg.admission.credentials == [f"{v}.node.cred" for v in sorted(vlans)]
        for vlan, auth in vlans.items():
            cred = from_text(mp.credentials[f"{vlan}.node.cred"])
            admission.verify(
                cred,
                authorities=frozenset({auth.public_bytes}),
                now=NOW.timestamp(),
                node_key=mp.node_key.public_bytes,
            )
            assert cred.identity == f"ns/{pod}"
    # The security "open" of older CryptoVLANs renders as public.
    old = _vlan("lab", LAB, {"security": "open"})
    assert (
        render.VlanPart(
            vlan_name=old.name,
            label="lab",
            creator_hex=LAB.public_hex,
            interface="pt-lab",
            mtu=1500,
            transports=("tcp",),
            bootstrap=(),
            relay=False,
            acl=models.AclSpec(),
            security=models.CryptoVLANSpec.model_validate(old.raw_spec).security,
        )
        .vlan_config(address=None, mac=None)
        .security
        == "public"
    )


def test_member_node_credentials_are_kept_then_renewed_before_expiry() -> None:
    members = {"a": membership.MemberObjects(node_key=NODE)}
    first = {m.pod.name: m for m in _plan(members, NOW).members}["a"].credentials
    kept = {"a": membership.MemberObjects(node_key=NODE, credentials=first)}
    again = {m.pod.name: m for m in _plan(kept, NOW + dt.timedelta(hours=5)).members}["a"]
    assert again.credentials["lab.node.cred"] == first["lab.node.cred"]
    late = {m.pod.name: m for m in _plan(kept, NOW + dt.timedelta(hours=9)).members}["a"]
    assert late.credentials["lab.node.cred"] != first["lab.node.cred"]
    # A new node key gets a credential for the new key.
    rekeyed = {"a": membership.MemberObjects(node_key=key(9), credentials=first)}
    mp = {m.pod.name: m for m in _plan(rekeyed, NOW).members}["a"]
    assert from_text(mp.credentials["lab.node.cred"]).node_key == key(9).public_bytes


def test_relay_config_admits_the_referencing_vlans_or_only_bootstrap_peers() -> None:
    mvlan = {"metadata": {"name": "campus", "namespace": "ns", "uid": "u"}, "kind": "MVLAN"}
    spec = models.MVLANSpec()
    lab_id = ids.vlan_id_hex(LAB.public_hex, "lab")
    served = {"lab": relay.ServedVlan(LAB.public_hex, lab_id, LAB)}
    desired = relay.relay_objects(mvlan=mvlan, spec=spec, image="i", served=served)
    cfg = sc.NodeConfig.model_validate_json(desired.configmap["data"]["node.json"])
    assert (cfg.admission_mode, cfg.admission.authorities) == ("credential", [LAB.public_hex])
    assert cfg.admission.credentials == ["lab.node.cred"]
    # The default ACL (restricted) forwards exactly the VLANs the relays serve: a relay is a
    # member of none, so the sidecar's own `restricted` would forward nothing.
    assert (cfg.relay.acl.mode, cfg.relay.acl.allow) == ("list", [lab_id])
    bare = relay.relay_objects(mvlan=mvlan, spec=spec, image="i")
    cfg = sc.NodeConfig.model_validate_json(bare.configmap["data"]["node.json"])
    assert (cfg.admission_mode, cfg.admission.peers) == ("peers", [])
    assert cfg.relay.acl.mode == "restricted"
    # open and list ACLs are rendered as written.
    opened = models.MVLANSpec.model_validate({"relays": {"acl": {"mode": "open"}}})
    cfg = sc.NodeConfig.model_validate_json(
        relay.relay_objects(mvlan=mvlan, spec=opened, image="i", served=served).configmap["data"][
            "node.json"
        ]
    )
    assert cfg.relay.acl.mode == "open"
    cvlans = [
        {"metadata": {"name": "lab"}, "spec": {"mvlanRef": {"name": "campus"}}},
        {"metadata": {"name": "web"}, "spec": {"mvlanRef": {"name": "other"}}},
        {"metadata": {"name": "solo"}, "spec": {}},
        {
            "metadata": {"name": "gone", "deletionTimestamp": "2026-11-22T12:00:00Z"},
            "spec": {"mvlanRef": {"name": "campus"}},
        },
    ]
    assert relay.referencing_vlans(cvlans, "campus") == ["lab"]
    # spec.cryptoVLANs adds VLANs that do not name the MVLAN.
    assert relay.referencing_vlans(cvlans, "campus", ["solo", "gone"]) == ["lab", "solo"]


def _intro(*texts: str) -> wire.Intro:
    return wire.Intro(credentials=tuple(from_text(t).encode() for t in texts))


def test_the_sidecar_policy_refuses_peers_the_operator_did_not_vouch_for() -> None:
    """What a member of VLAN lab renders, fed to the sidecar's own admission decision."""
    gate = admission.Admission(
        mode="credential", authorities=[LAB.public_bytes], wall=lambda: NOW.timestamp()
    )
    good = _issue(LAB, NODE)
    assert gate.decide(NODE.peer_id, _intro(good)).admitted
    # Mallory replays a member's credential under her own identity.
    assert gate.decide(MALLORY.peer_id, _intro(good)) == admission.Verdict(
        False, "wrong_member_key"
    )
    # Mallory signs her own credential, or holds one from another VLAN's authority.
    own = _issue(MALLORY_AUTHORITY, MALLORY)
    assert gate.decide(MALLORY.peer_id, _intro(own)).reason == "wrong_authority"
    web = _issue(WEB, MALLORY)
    assert gate.decide(MALLORY.peer_id, _intro(web)).reason == "wrong_authority"
    # An expired credential no longer admits.
    late = admission.Admission(
        mode="credential",
        authorities=[LAB.public_bytes],
        wall=lambda: (NOW + credentials.VALIDITY + dt.timedelta(hours=1)).timestamp(),
    )
    assert late.decide(NODE.peer_id, _intro(good)).reason == "expired"
