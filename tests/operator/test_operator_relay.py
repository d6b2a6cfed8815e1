"""MVLAN relay: object shapes and the addresses another cluster dials."""

from __future__ import annotations

from typing import Any

import pytest

from peertap.operator import models, podspec, relay, relay_addresses
from peertap.sidecar import config as sc

PEER = "12D3KooWPeer"


def _svc(kind: str, **extra: Any) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "metadata": {"name": "campus-relay", "namespace": "ns"},
        "spec": {"type": kind, "ports": [{"port": 4001, "nodePort": 30401}]},
    }
    svc.update(extra)
    return svc


NODES = [
    {"status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.10"}]}},
    {
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "192.168.1.11"},
                {"type": "ExternalIP", "address": "203.0.113.11"},
            ]
        }
    },
]
DNS = f"/dns/campus-relay.ns.svc/tcp/4001/p2p/{PEER}"


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (None, []),
        (_svc("ClusterIP"), [DNS]),
        (
            _svc("ClusterIP", spec={"type": "ClusterIP", "clusterIP": "10.96.0.7", "ports": []}),
            [f"/ip4/10.96.0.7/tcp/4001/p2p/{PEER}", DNS],
        ),
        (
            _svc("NodePort"),
            [
                f"/ip4/192.168.1.10/tcp/30401/p2p/{PEER}",
                f"/ip4/203.0.113.11/tcp/30401/p2p/{PEER}",
                DNS,
            ],
        ),
        (
            _svc(
                "LoadBalancer",
                status={"loadBalancer": {"ingress": [{"ip": "2001:db8::1"}, {"hostname": "lb.x"}]}},
            ),
            [
                f"/ip6/2001:db8::1/tcp/4001/p2p/{PEER}",
                f"/dns/lb.x/tcp/4001/p2p/{PEER}",
                f"/ip4/192.168.1.10/tcp/30401/p2p/{PEER}",
                f"/ip4/203.0.113.11/tcp/30401/p2p/{PEER}",
                DNS,
            ],
        ),
    ],
)
def test_relay_addresses(service: dict[str, Any] | None, expected: list[str]) -> None:
    assert relay_addresses.relay_addresses(service=service, nodes=NODES, peer_id=PEER) == expected


MVLAN = {"metadata": {"name": "campus", "namespace": "ns", "uid": "u"}, "kind": "MVLAN"}


def test_relay_objects_run_peertap_as_a_relay_behind_the_service() -> None:
    spec = models.MVLANSpec.model_validate(
        {"relays": {"serviceType": "LoadBalancer", "acl": {"mode": "open"}}}
    )
    desired = relay.relay_objects(mvlan=MVLAN, spec=spec, image="img:1")
    cfg = sc.NodeConfig.model_validate_json(desired.configmap["data"]["node.json"])
    assert cfg.vlans == [] and cfg.relay.enabled and cfg.relay.acl.mode == "open"
    (unit,) = desired.relays
    assert (unit.name, unit.key) == ("campus-relay", "campus-relay-key")
    deployment = unit.deployment
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["peertap.io/role"] == "relay"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "img:1"
    assert container["command"] == ["peertap", "run", "--config", "/etc/peertap/node.json"]
    sources = pod["spec"]["volumes"][0]["projected"]["sources"]
    assert sources == [
        {"configMap": {"name": "campus-relay"}},
        {"secret": {"name": "campus-relay-key"}},
        {"secret": {"name": "campus-relay-cred"}},
    ]
    service = unit.service
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"][0]["port"] == 4001
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    for obj in desired.all():
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "u"


def test_each_replica_is_one_pod_with_its_own_key_and_service_selecting_only_it() -> None:
    spec = models.MVLANSpec.model_validate({"relays": {"replicas": 3}})
    desired = relay.relay_objects(mvlan=MVLAN, spec=spec, image="i")
    assert [(u.name, u.key) for u in desired.relays] == [
        ("campus-relay", "campus-relay-key"),
        ("campus-relay-1", "campus-relay-1-key"),
        ("campus-relay-2", "campus-relay-2-key"),
    ]
    for unit in desired.relays:
        assert unit.deployment["spec"]["replicas"] == 1
        assert unit.deployment["metadata"]["name"] == unit.service["metadata"]["name"] == unit.name
        sources = unit.deployment["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
        assert sources == [
            {"configMap": {"name": "campus-relay"}},
            {"secret": {"name": unit.key}},
            {"secret": {"name": relay.cred_name("campus", unit.ordinal)}},
        ]
        selector = unit.service["spec"]["selector"]
        assert selector == unit.deployment["spec"]["selector"]["matchLabels"]
        for other in desired.relays:
            labels = other.deployment["spec"]["template"]["metadata"]["labels"]
            assert (selector.items() <= labels.items()) == (other is unit)


def test_zero_replicas_keeps_the_first_relay_scaled_to_zero() -> None:
    spec = models.MVLANSpec.model_validate({"relays": {"replicas": 0}})
    (unit,) = relay.relay_objects(mvlan=MVLAN, spec=spec, image="i").relays
    assert unit.deployment["spec"]["replicas"] == 0
    assert unit.key == "campus-relay-key"


def test_extra_ordinals_are_read_from_this_mvlans_operator_objects_only() -> None:
    def obj(name: str, instance: str = "campus", managed: bool = True) -> dict[str, Any]:
        labels = {"app.kubernetes.io/instance": instance}
        if managed:
            labels["app.kubernetes.io/managed-by"] = "peertap-operator"
        return {"metadata": {"name": name, "labels": labels}}

    found = [
        obj("campus-relay"),
        obj("campus-relay-1"),
        obj("campus-relay-12"),
        obj("campus-relay-2-key"),
        obj("campus-relay-3", managed=False),
        obj("campus-relay-4", instance="other"),
        obj("campus-relay-0"),
        obj("campus-relay-1-relay"),
    ]
    assert relay.extra_ordinals(found, "campus") == {1, 12}
    assert relay.extra_ordinals(found, "campus", suffix="-key") == {2}


def test_all_relay_addresses_put_every_relays_external_addresses_first() -> None:
    lb = _svc("LoadBalancer", status={"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}]}})
    lb1 = {
        "metadata": {"name": "campus-relay-1", "namespace": "ns"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 4001, "nodePort": 30402}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.2"}]}},
    }
    out = relay_addresses.all_relay_addresses(
        [(lb, "P0"), (lb1, "P1"), (None, "P2")], nodes=NODES[:1]
    )
    assert out == [
        "/ip4/198.51.100.1/tcp/4001/p2p/P0",
        "/ip4/198.51.100.2/tcp/4001/p2p/P1",
        "/ip4/192.168.1.10/tcp/30401/p2p/P0",
        "/ip4/192.168.1.10/tcp/30402/p2p/P1",
        "/dns/campus-relay.ns.svc/tcp/4001/p2p/P0",
        "/dns/campus-relay-1.ns.svc/tcp/4001/p2p/P1",
    ]


def test_config_change_changes_the_hash_that_rolls_the_relay() -> None:
    mvlan = {"metadata": {"name": "campus", "namespace": "ns"}}
    (a,) = relay.relay_objects(mvlan=mvlan, spec=models.MVLANSpec(), image="i").relays
    (b,) = relay.relay_objects(
        mvlan=mvlan,
        spec=models.MVLANSpec.model_validate({"relays": {"acl": {"mode": "open"}}}),
        image="i",
    ).relays
    key = relay.HASH_ANNOTATION
    assert (
        a.deployment["spec"]["template"]["metadata"]["annotations"][key]
        != b.deployment["spec"]["template"]["metadata"]["annotations"][key]
    )
    assert a.service["metadata"]["annotations"][key] == b.service["metadata"]["annotations"][key]


def test_relay_pods_run_unprivileged_without_an_api_token() -> None:
    settings = podspec.PodSettings(relay_resources={"limits": {"memory": "1Gi"}})
    desired = relay.relay_objects(mvlan=MVLAN, spec=models.MVLANSpec(), image="i", pod=settings)
    (unit,) = desired.relays
    pod = unit.deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    ctx = pod["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 65532
    # The projected key and config (mode 0440) are readable through the pod's fsGroup.
    assert ctx["fsGroup"] == 65532
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"] == {"limits": {"memory": "1Gi"}}
    defaults = relay.relay_objects(mvlan=MVLAN, spec=models.MVLANSpec(), image="i")
    (container,) = defaults.relays[0].deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == podspec.DEFAULT_RELAY_RESOURCES
