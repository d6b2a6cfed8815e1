"""membership.decide: who joins, what each member gets, what is released; the clock is passed in."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peertap.operator import credentials, membership, models
from peertap.operator import sidecar_status as ss
from peertap.sidecar import config as sc
from peertap.sidecar import identity, ids

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def key(n: int) -> identity.Identity:
    return identity.Identity(Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32))


AUTHORITY = key(200)


def keygen(start: int = 1) -> Callable[[], identity.Identity]:
    counter: Iterator[int] = iter(range(start, 150))
    return lambda: key(next(counter))


def vlan(
    name: str = "lab",
    *,
    spec: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
    stored: membership.StoredVlan | None = None,
    deleting: bool = False,
) -> membership.VlanView:
    return membership.VlanView(
        name=name,
        generation=3,
        raw_spec=spec
        if spec is not None
        else {"security": "public", "interface": {"ipam": {"subnet": "10.250.0.0/29"}}},
        annotations=annotations or {},
        status=models.CryptoVLANStatus(),
        authority=AUTHORITY,
        stored=stored or membership.StoredVlan(spec=None, allocations={}),
        deleting=deleting,
    )


def pod(name: str, labels: Mapping[str, str], **kw: Any) -> membership.PodView:
    return membership.PodView(name=name, uid=f"uid-{name}", labels=labels, annotations={}, **kw)


def decide(
    vlans: list[membership.VlanView],
    pods: list[membership.PodView],
    members: Mapping[str, membership.MemberObjects] | None = None,
    now: dt.datetime = NOW,
) -> membership.Plan:
    inputs = membership.Inputs(
        namespace="ns", vlans=vlans, pods=pods, members=members or {}, now=now
    )
    return membership.decide(inputs, new_identity=keygen())


def condition(plan_vlan: membership.VlanPlan, type_: str) -> models.Condition:
    return next(c for c in plan_vlan.status.conditions if c.type == type_)


SELECTOR = {"security": "public", "podSelector": {"matchLabels": {"app": "x"}}}


@pytest.mark.parametrize(
    ("spec", "labels", "joins"),
    [
        (SELECTOR, {"app": "x"}, True),
        (SELECTOR, {"app": "y"}, False),
        (SELECTOR, {"peertap.io/vlans": "lab"}, True),
        (SELECTOR, {"peertap.io/vlans": "other, lab"}, True),
        (SELECTOR, {"peertap.io/vlans": "other_lab"}, True),
        (SELECTOR, {"peertap.io/vlans": "other_labs"}, False),
        (SELECTOR, {"peertap.io/vlans": "other"}, False),
        (SELECTOR, {"app": "x", "peertap.io/role": "relay"}, False),
        ({"security": "public"}, {"app": "x"}, False),
        ({"security": "public", "podSelector": {}}, {"anything": "1"}, True),
        (
            {
                "podSelector": {
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
                }
            },
            {"tier": "b"},
            True,
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}},
            {"tier": "b"},
            False,
        ),
    ],
)
def test_who_joins_follows_selector_and_vlans_label(
    spec: dict[str, Any], labels: dict[str, str], joins: bool
) -> None:
    plan = decide([vlan(spec=spec)], [pod("p", labels)])
    assert [m.pod for m in plan.vlans[0].status.members] == (["p"] if joins else [])
    assert [m.key for m in plan.members] == (["p"] if joins else [])


def test_members_get_distinct_addresses_macs_and_a_valid_node_config() -> None:
    pods = [pod(n, {"peertap.io/vlans": "lab"}, node="n1", ready=n == "b") for n in "cab"]
    plan = decide([vlan()], pods)
    (vp,) = plan.vlans
    assert vp.status.vlan_id == ids.vlan_id_hex(AUTHORITY.public_hex, "lab")
    assert [(m.pod, m.address, m.ready) for m in vp.status.members] == [
        ("a", "10.250.0.1/29", False),
        ("b", "10.250.0.2/29", True),
        ("c", "10.250.0.3/29", False),
    ]
    assert len({m.mac for m in vp.status.members}) == 3
    assert condition(vp, "Ready").message == "3 members, 1 ready; not ready: a, c"
    for mp in plan.members:
        cfg = sc.NodeConfig.model_validate_json(mp.config)
        assert cfg.vlans[0].security == "public"
        assert cfg.vlans[0].interface.name == "pt-lab"
        assert cfg.vlans[0].credential is None
        assert cfg.api.listen == "0.0.0.0:9464"
        assert mp.create_node_key
        payload = credentials.verify(
            mp.credentials["lab.cred.json"],
            authority_hex=AUTHORITY.public_hex,
            vlan_id=vp.status.vlan_id,
            now=NOW,
        )
        assert payload["identity"] == f"ns/{mp.pod.name}"
        assert payload["member_key"] == mp.node_key.public_hex
    allocations = json.loads(vp.configmap["allocations.json"])  # type: ignore[index]
    assert sorted(allocations) == ["a", "b", "c"]


def test_stored_allocations_and_keys_are_kept() -> None:
    stored = membership.StoredVlan(
        spec=None, allocations={"b": {"address": "10.250.0.5/29", "mac": "02:00:00:00:00:05"}}
    )
    members = {"b": membership.MemberObjects(node_key=key(99))}
    plan = decide(
        [vlan(stored=stored)],
        [pod("a", {"peertap.io/vlans": "lab"}), pod("b", {"peertap.io/vlans": "lab"})],
        members,
    )
    by_pod = {m.pod: m for m in plan.vlans[0].status.members}
    assert by_pod["b"].address == "10.250.0.5/29"
    assert by_pod["b"].mac == "02:00:00:00:00:05"
    assert by_pod["a"].address == "10.250.0.1/29"
    plans = {m.key: m for m in plan.members}
    assert plans["b"].node_key.public_hex == key(99).public_hex
    assert not plans["b"].create_node_key
    assert plans["a"].create_node_key


def test_terminating_and_vanished_pods_are_released() -> None:
    members = {
        "gone": membership.MemberObjects(node_key=key(50)),
        "leaving": membership.MemberObjects(node_key=key(51)),
        "stay": membership.MemberObjects(node_key=key(52)),
    }
    plan = decide(
        [vlan()],
        [
            pod("leaving", {"peertap.io/vlans": "lab"}, terminating=True),
            pod("stay", {"peertap.io/vlans": "lab"}),
        ],
        members,
    )
    assert [m.pod for m in plan.vlans[0].status.members] == ["stay"]
    assert plan.delete_members == ["gone", "leaving"]


def test_a_deleting_vlan_drops_out_of_member_configs_and_releases_sole_members() -> None:
    pods = [pod("both", {"peertap.io/vlans": "lab,web"}), pod("only", {"peertap.io/vlans": "lab"})]
    members = {p.name: membership.MemberObjects(node_key=key(60 + i)) for i, p in enumerate(pods)}
    plan = decide([vlan("lab", deleting=True), vlan("web")], pods, members)
    assert [v.name for v in plan.vlans] == ["web"]
    (both,) = plan.members
    cfg = sc.NodeConfig.model_validate_json(both.config)
    assert [v.label for v in cfg.vlans] == ["web"]
    assert list(both.credentials) == ["web.cred.json", "web.node.cred"]
    assert cfg.admission.credentials == ["web.node.cred"]
    assert plan.delete_members == ["only"]


def test_a_pod_in_two_vlans_gets_one_key_and_both_interfaces() -> None:
    web = vlan("web", spec={"security": "public", "interface": {"ipam": {"subnet": "10.1.0.0/24"}}})
    plan = decide([vlan(), web], [pod("p", {"peertap.io/vlans": "lab,web"})])
    (mp,) = plan.members
    cfg = sc.NodeConfig.model_validate_json(mp.config)
    assert [(v.interface.name, v.interface.address) for v in cfg.vlans] == [
        ("pt-lab", "10.250.0.1/29"),
        ("pt-web", "10.1.0.1/24"),
    ]
    assert sorted(mp.credentials) == [
        "lab.cred.json",
        "lab.node.cred",
        "web.cred.json",
        "web.node.cred",
    ]


def test_interface_name_clash_is_reported_on_the_vlans_not_raised() -> None:
    spec = {"security": "public", "interface": {"name": "pt0"}}
    plan = decide(
        [vlan("a", spec=spec), vlan("b", spec=spec)], [pod("p", {"peertap.io/vlans": "a,b"})]
    )
    assert plan.members == []
    for vp in plan.vlans:
        cond = condition(vp, "SpecValid")
        assert cond.status == "False" and cond.reason == "MemberConfigInvalid"
        assert "same interface name" in cond.message


@pytest.mark.parametrize(
    ("spec", "reason", "fragment"),
    [
        ({"interface": {"ipam": {"subnet": "10.0.0.1/24"}}}, "InvalidSubnet", "host bits"),
        ({"interface": {"mtu": 20}}, "InvalidSpec", "spec.interface.mtu"),
        ({"unknownField": 1}, "InvalidSpec", "spec.unknownField"),
        (
            {"relayPolicy": {"acl": {"mode": "list"}}},
            "InvalidRelayPolicy",
            "needs at least one allow",
        ),
        ({"rekeyInterval": "0s"}, "InvalidRekeyInterval", "must be positive"),
    ],
)
def test_bad_spec_without_a_valid_past_is_not_served_and_says_why(
    spec: dict[str, Any], reason: str, fragment: str
) -> None:
    plan = decide([vlan(spec=spec)], [pod("p", {"peertap.io/vlans": "lab"})])
    (vp,) = plan.vlans
    cond = condition(vp, "SpecValid")
    assert (cond.status, cond.reason) == ("False", reason)
    assert fragment in cond.message
    assert condition(vp, "Ready").status == "False"
    assert vp.configmap is None and plan.members == []
    assert cond.last_transition_time == "2026-11-22T12:00:00Z"


def test_label_change_keeps_the_last_valid_spec_in_force() -> None:
    good = models.CryptoVLANSpec.model_validate({"security": "public"})
    plan = decide(
        [
            vlan(
                spec={"label": "renamed", "security": "public"},
                annotations={"peertap.io/label": "lab"},
                stored=membership.StoredVlan(spec=good, allocations={}),
            )
        ],
        [pod("p", {"peertap.io/vlans": "lab"})],
    )
    (vp,) = plan.vlans
    cond = condition(vp, "SpecValid")
    assert cond.reason == "LabelImmutable"
    assert "last valid spec stays in force" in cond.message
    assert vp.status.vlan_id == ids.vlan_id_hex(AUTHORITY.public_hex, "lab")
    assert [m.pod for m in vp.status.members] == ["p"]


def test_private_vlan_names_the_credential_and_the_rekey_interval() -> None:
    plan = decide([vlan(spec={"rekeyInterval": "1h30m"})], [pod("p", {"peertap.io/vlans": "lab"})])
    (mp,) = plan.members
    (cfg,) = sc.NodeConfig.model_validate_json(mp.config).vlans
    assert (cfg.security, cfg.credential, cfg.rekey_interval_s) == ("mls", "lab.cred.json", 5400)
    assert "lab.cred.json" in mp.credentials


def test_tun_interface_mode_is_rendered_for_the_sidecar() -> None:
    spec = {"security": "public", "interface": {"mode": "tun"}}
    plan = decide([vlan(spec=spec)], [pod("p", {"peertap.io/vlans": "lab"})])
    (mp,) = plan.members
    (cfg,) = sc.NodeConfig.model_validate_json(mp.config).vlans
    assert cfg.interface.mode == "tun"
    assert condition(plan.vlans[0], "SpecValid").status == "True"


def test_exhausted_subnet_is_a_condition_and_later_members_wait() -> None:
    pods = [pod(f"p{i}", {"peertap.io/vlans": "lab"}) for i in range(8)]
    plan = decide([vlan()], pods)
    (vp,) = plan.vlans
    assert condition(vp, "SpecValid").reason == "SubnetExhausted"
    addresses = [m.address for m in vp.status.members]
    assert addresses.count("") == 2 and len(set(addresses)) == 7
    assert "2 member pod(s): p6, p7" in condition(vp, "SpecValid").message


@pytest.mark.parametrize(
    ("age", "renewed"),
    [
        (dt.timedelta(hours=1), False),
        (dt.timedelta(hours=7), False),
        (dt.timedelta(hours=9), True),
        (dt.timedelta(hours=40), True),
    ],
)
def test_credentials_are_renewed_only_when_close_to_expiry(
    age: dt.timedelta, renewed: bool
) -> None:
    issued_at = NOW - age
    node = key(70)
    old = credentials.issue(
        authority_key=AUTHORITY,
        member_identity="ns/p",
        member_key_hex=node.public_hex,
        vlan_id=ids.vlan_id_hex(AUTHORITY.public_hex, "lab"),
        now=issued_at,
    )
    members = {"p": membership.MemberObjects(node_key=node, credentials={"lab.cred.json": old})}
    plan = decide([vlan()], [pod("p", {"peertap.io/vlans": "lab"})], members)
    assert (plan.members[0].credentials["lab.cred.json"] != old) is renewed


def test_transition_time_stays_while_the_condition_holds() -> None:
    first = decide([vlan()], [])
    earlier = first.vlans[0].status
    view = vlan()
    view = membership.VlanView(**{**view.__dict__, "status": earlier})
    later = decide([view], [], now=NOW + dt.timedelta(hours=1))
    assert condition(later.vlans[0], "Ready").last_transition_time == "2026-11-22T12:00:00Z"


def test_member_object_names_stay_valid_for_long_pod_names() -> None:
    long_key = "p" * 253
    name = membership.member_object_name(long_key, "cred")
    assert len(name) <= 253 and name.endswith("-cred")
    assert name != membership.member_object_name("p" * 252, "cred")


def _served_member(now: dt.datetime = NOW) -> tuple[membership.Plan, membership.MemberObjects]:
    """A VLAN with member p, as served while its authority key was there."""
    plan = decide([vlan()], [pod("p", {"peertap.io/vlans": "lab"})], now=now)
    (mp,) = plan.members
    return plan, membership.MemberObjects(node_key=mp.node_key, credentials=mp.credentials)


@pytest.mark.parametrize(
    ("authority", "problem", "reason"),
    [
        (None, None, "AuthorityMissing"),
        (
            None,
            ("AuthorityUnreadable", "Secret lab-authority holds no usable key"),
            "AuthorityUnreadable",
        ),
        (key(201), None, "AuthorityMismatch"),
    ],
)
def test_a_vlan_whose_authority_key_is_gone_keeps_serving_what_members_hold(
    authority: identity.Identity | None, problem: tuple[str, str] | None, reason: str
) -> None:
    first, held = _served_member()
    recorded = {"peertap.io/authority": AUTHORITY.public_hex, "peertap.io/label": "lab"}
    view = membership.VlanView(
        **{
            **vlan(annotations=recorded).__dict__,
            "authority": authority,
            "authority_problem": problem,
        }
    )
    later = NOW + dt.timedelta(hours=9)  # the credentials would be due for renewal
    plan = membership.decide(
        membership.Inputs(
            namespace="ns",
            vlans=[view],
            pods=[pod("p", {"peertap.io/vlans": "lab"}), pod("q", {"peertap.io/vlans": "lab"})],
            members={"p": held},
            now=later,
        ),
        new_identity=keygen(50),
    )
    (vp,) = plan.vlans
    # p keeps its config, VLAN-ID and the very credentials it holds; nothing is deleted.
    assert [m.key for m in plan.members] == ["p"] and plan.delete_members == []
    assert plan.members[0].credentials == held.credentials
    assert plan.members[0].config == first.members[0].config
    assert vp.status.vlan_id == first.vlans[0].status.vlan_id
    assert vp.annotations["peertap.io/authority"] == AUTHORITY.public_hex
    # q cannot join until the key is back, and Ready says so and how to restore it.
    cond = condition(vp, "Ready")
    assert (cond.status, cond.reason) == ("False", reason)
    assert "kubectl create secret generic lab-authority" in cond.message
    assert "waiting to join: q" in cond.message
    assert [m.pod for m in vp.status.members] == ["p"]


def test_a_new_vlan_with_an_unusable_authority_secret_is_not_served() -> None:
    view = membership.VlanView(
        **{
            **vlan().__dict__,
            "authority": None,
            "authority_problem": (
                "AuthorityUnreadable",
                "Secret lab-authority holds no usable key",
            ),
        }
    )
    plan = decide([view], [pod("p", {"peertap.io/vlans": "lab"})])
    (vp,) = plan.vlans
    assert condition(vp, "SpecValid").reason == "AuthorityUnreadable"
    assert condition(vp, "Ready").status == "False"
    assert plan.members == [] and vp.annotations == {} and vp.configmap is None


def test_conditions_carry_the_generation_and_ready_is_false_beside_an_invalid_spec() -> None:
    stored = decide([vlan()], []).vlans[0]
    spec = {"security": "public", "interface": {"ipam": {"subnet": "10.250.0.1/24"}}}
    last_valid = membership.StoredVlan(
        spec=models.CryptoVLANSpec.model_validate(
            {"security": "public", "interface": {"ipam": {"subnet": "10.250.0.0/29"}}}
        ),
        allocations={},
    )
    view = membership.VlanView(
        **{**vlan(spec=spec, stored=last_valid).__dict__, "status": stored.status}
    )
    (vp,) = decide([view], [pod("p", {"peertap.io/vlans": "lab"})]).vlans
    spec_valid, ready = condition(vp, "SpecValid"), condition(vp, "Ready")
    assert (spec_valid.status, spec_valid.reason) == ("False", "InvalidSubnet")
    assert "last valid spec stays in force" in spec_valid.message
    assert (ready.status, ready.reason) == ("False", "InvalidSubnet")
    assert spec_valid.observed_generation == ready.observed_generation == 3
    # Still served on the last valid spec.
    assert [m.pod for m in vp.status.members] == ["p"]


def test_a_dangling_mvlan_ref_is_not_ready() -> None:
    spec = {"security": "public", "mvlanRef": {"name": "gone"}}
    view = membership.VlanView(**{**vlan(spec=spec).__dict__, "mvlan_missing": True})
    (vp,) = decide([view], []).vlans
    ready = condition(vp, "Ready")
    assert (ready.status, ready.reason) == ("False", "MVLANNotFound")
    assert "gone" in ready.message


def test_members_without_a_sidecar_keep_the_vlan_from_ready_naming_the_pods() -> None:
    pods = [
        pod("with", {"peertap.io/vlans": "lab"}, ready=True),
        pod("without", {"peertap.io/vlans": "lab"}, ready=True, sidecar=False),
    ]
    (vp,) = decide([vlan()], pods).vlans
    ready = condition(vp, "Ready")
    assert (ready.status, ready.reason) == ("False", "MembersWithoutSidecar")
    assert "without" in ready.message
    assert {m.pod: m.ready for m in vp.status.members} == {"with": True, "without": False}


def test_presence_interval_of_the_mvlan_sets_the_member_timeout_of_private_vlans() -> None:
    spec = {"mvlanRef": {"name": "campus"}}
    view = membership.VlanView(**{**vlan(spec=spec).__dict__, "presence_interval_s": 5.0})
    (mp,) = decide([view], [pod("p", {"peertap.io/vlans": "lab"})]).members
    (vcfg,) = sc.NodeConfig.model_validate_json(mp.config).vlans
    assert vcfg.member_timeout_s == 15.0
    # Unset: the sidecar's default.
    (mp,) = decide([vlan(spec=spec)], [pod("p", {"peertap.io/vlans": "lab"})]).members
    (vcfg,) = sc.NodeConfig.model_validate_json(mp.config).vlans
    assert vcfg.member_timeout_s == sc.VlanConfig.model_fields["member_timeout_s"].default


def test_member_mac_is_the_one_the_sidecar_derives_by_default() -> None:
    plan = decide([vlan()], [pod("p", {"peertap.io/vlans": "lab"})])
    (mp,) = plan.members
    vid = bytes.fromhex(plan.vlans[0].status.vlan_id)
    expected = ids.mac_str(ids.member_mac(mp.node_key.public_bytes, vid, bytes(16)))
    assert plan.vlans[0].status.members[0].mac == expected


def test_reported_group_state_is_the_majority_of_the_members_reports() -> None:
    vid = ids.vlan_id_hex(AUTHORITY.public_hex, "lab")
    pods = [pod(n, {"peertap.io/vlans": "lab"}) for n in "abcd"]

    def report(epoch: int, mls: str) -> ss.Report:
        return ss.Report(peer_id="p", vlans={vid: ss.VlanReport(vid, epoch, mls)})

    sidecars = {"uid-a": report(5, "x"), "uid-b": report(5, "x"), "uid-c": report(6, "y")}
    inputs = membership.Inputs(
        namespace="ns", vlans=[vlan()], pods=pods, members={}, now=NOW, sidecars=sidecars
    )
    (vp,) = membership.decide(inputs, new_identity=keygen()).vlans
    assert (vp.status.epoch, vp.status.mls_id) == (5, "x")
    assert [(m.pod, m.epoch, m.mls_id) for m in vp.status.members] == [
        ("a", 5, "x"),
        ("b", 5, "x"),
        ("c", 6, "y"),
        ("d", 0, ""),
    ]

    # Without fresh reports (a restarted operator) the last reported values stay.
    carried = membership.VlanView(
        name="lab",
        generation=3,
        raw_spec=vlan().raw_spec,
        annotations={},
        status=vp.status,
        authority=AUTHORITY,
        stored=membership.StoredVlan(spec=None, allocations={}),
    )
    (again,) = decide([carried], pods).vlans
    assert (again.status.epoch, again.status.mls_id) == (5, "x")
    assert [(m.pod, m.mls_id) for m in again.status.members] == [
        ("a", "x"),
        ("b", "x"),
        ("c", "y"),
        ("d", ""),
    ]

    # Reports taken, but nobody answered: nothing is reported.
    inputs = membership.Inputs(
        namespace="ns", vlans=[carried], pods=pods, members={}, now=NOW, sidecars={}
    )
    (silent,) = membership.decide(inputs, new_identity=keygen()).vlans
    assert (silent.status.epoch, silent.status.mls_id) == (0, "")
    assert {m.mls_id for m in silent.status.members} == {""}


def test_an_edited_authority_annotation_is_restored_from_the_operators_record() -> None:
    """While the webhook is down a user may edit peertap.io/authority; the VLAN's ConfigMap
    still says which key it was served with, and the VLAN keeps that key."""
    first = decide([vlan()], [pod("p", {"peertap.io/vlans": "lab"})])
    stored = membership.parse_stored(first.vlans[0].configmap)
    assert stored.creator == AUTHORITY.public_hex
    tampered = vlan(
        annotations={"peertap.io/authority": key(201).public_hex, "peertap.io/label": "lab"},
        stored=stored,
    )
    (vp,) = decide([tampered], [pod("p", {"peertap.io/vlans": "lab"})]).vlans
    assert vp.annotations["peertap.io/authority"] == AUTHORITY.public_hex
    assert vp.status.vlan_id == first.vlans[0].status.vlan_id
    assert next(c for c in vp.status.conditions if c.type == "Ready").status == "True"
