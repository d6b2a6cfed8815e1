"""MVLAN relay: object shapes and the addresses another cluster dials."""

from __future__ import annotations

from typing import Any

import pytest

from peertap.operator import models, relay
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
    assert relay.relay_addresses(service=service, nodes=NODES, peer_id=PEER) == expected


def test_relay_objects_run_peertap_as_a_relay_behind_the_service() -> None:
    mvlan = {"metadata": {"name": "campus", "namespace": "ns", "uid": "u"}, "kind": "MVLAN"}
    spec = models.MVLANSpec.model_validate(
        {"relays": {"serviceType": "LoadBalancer", "acl": {"mode": "open"}}}
    )
    objs = relay.relay_objects(mvlan=mvlan, spec=spec, image="img:1")
    cfg = sc.NodeConfig.model_validate_json(objs["configmap"]["data"]["node.json"])
    assert cfg.vlans == [] and cfg.relay.enabled and cfg.relay.acl.mode == "open"
    deployment = objs["deployment"]
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["peertap.io/role"] == "relay"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "img:1"
    assert container["command"] == ["peertap", "run", "--config", "/etc/peertap/node.json"]
    sources = pod["spec"]["volumes"][0]["projected"]["sources"]
    assert sources == [
        {"configMap": {"name": "campus-relay"}},
        {"secret": {"name": "campus-relay-key"}},
    ]
    service = objs["service"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"][0]["port"] == 4001
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    for obj in objs.values():
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "u"


def test_config_change_changes_the_hash_that_rolls_the_relay() -> None:
    mvlan = {"metadata": {"name": "campus", "namespace": "ns"}}
    a = relay.relay_objects(mvlan=mvlan, spec=models.MVLANSpec(), image="i")
    b = relay.relay_objects(
        mvlan=mvlan,
        spec=models.MVLANSpec.model_validate({"relays": {"acl": {"mode": "open"}}}),
        image="i",
    )
    key = relay.HASH_ANNOTATION
    assert (
        a["deployment"]["spec"]["template"]["metadata"]["annotations"][key]
        != b["deployment"]["spec"]["template"]["metadata"]["annotations"][key]
    )
    assert (
        a["service"]["metadata"]["annotations"][key] == b["service"]["metadata"]["annotations"][key]
    )
