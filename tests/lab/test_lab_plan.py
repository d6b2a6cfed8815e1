"""Lab plans and node configs: addresses, routes, bootstrap multiaddrs (no root needed)."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from peertap.sidecar import identity
from peertap.sidecar.lab import LabSpec, LabSpecError, LinkSpec, PodSpec, topology
from peertap.sidecar.lab.nodes import node_config
from peertap.sidecar.lab.plan import Route, make_plan


def test_each_link_gets_its_own_subnet_from_the_base() -> None:
    plan = make_plan(topology("chain"), "pt-t1-")
    assert [str(link.subnet) for link in plan.links] == [
        "10.231.0.0/24",
        "10.231.1.0/24",
        "10.231.2.0/24",
    ]
    assert plan.underlay_address("a", "r1") == ipaddress.IPv4Address("10.231.0.1")
    assert plan.underlay_address("r1", "a") == ipaddress.IPv4Address("10.231.0.2")


def test_slash_30_links_are_cut_from_a_configured_base() -> None:
    spec = topology("relay").model_copy(
        update={"underlay_base": "10.99.0.0/24", "link_prefixlen": 30}
    )
    plan = make_plan(spec, "pt-t1-")
    assert [str(link.subnet) for link in plan.links] == ["10.99.0.0/30", "10.99.0.4/30"]
    assert plan.underlay_address("b", "r") == ipaddress.IPv4Address("10.99.0.6")


def test_pods_route_every_remote_subnet_via_the_first_hop() -> None:
    plan = make_plan(topology("chain"), "pt-t1-")
    assert plan.pods["a"].routes == (
        Route(ipaddress.IPv4Network("10.231.1.0/24"), ipaddress.IPv4Address("10.231.0.2")),
        Route(ipaddress.IPv4Network("10.231.2.0/24"), ipaddress.IPv4Address("10.231.0.2")),
    )
    assert plan.pods["r1"].routes == (
        Route(ipaddress.IPv4Network("10.231.2.0/24"), ipaddress.IPv4Address("10.231.1.2")),
    )


def test_members_get_overlay_addresses_in_pod_order_and_relays_none() -> None:
    plan = make_plan(topology("star", members=3), "pt-t1-")
    assert plan.pods["r"].overlay_address is None
    assert [plan.pods[f"m{i}"].overlay_address for i in (1, 2, 3)] == [
        "10.250.0.1/24",
        "10.250.0.2/24",
        "10.250.0.3/24",
    ]


def test_namespaces_and_root_veth_names_carry_the_prefix() -> None:
    plan = make_plan(topology("relay"), "pt-beef-")
    assert {p.netns for p in plan.pods.values()} == {"pt-beef-a", "pt-beef-r", "pt-beef-b"}
    assert all(len(n) <= 15 for x in plan.links for n in (x.root_a, x.root_b))
    assert all(n.startswith("pt-beef-") for x in plan.links for n in (x.root_a, x.root_b))


def test_a_member_bootstraps_to_the_relay_address_on_its_own_link() -> None:
    plan = make_plan(topology("chain"), "pt-t1-")
    ids = {pod: identity.generate().peer_id for pod in plan.node_pods()}
    config = node_config(plan, "b", creator_hex="ab" * 32, peer_ids=ids)
    assert config.bootstrap == [f"/ip4/10.231.2.1/tcp/4001/p2p/{ids['r2']}"]
    assert config.vlans[0].interface.name == "pt-lab"
    assert config.vlans[0].interface.address == "10.250.0.2/24"
    assert config.vlans[0].security == "public"
    assert config.admission.mode == "credential" and config.admission.credentials == ["node.cred"]
    assert not config.relay.enabled


def test_a_pure_relay_has_no_vlan_and_forwards_any_vlan() -> None:
    plan = make_plan(topology("relay"), "pt-t1-")
    ids = {pod: identity.generate().peer_id for pod in plan.node_pods()}
    config = node_config(plan, "r", creator_hex="ab" * 32, peer_ids=ids)
    assert config.vlans == []
    assert config.relay.enabled
    assert config.relay.acl.mode == "open"
    assert config.bootstrap == []


def test_direct_variant_dials_across_a_routing_pod_that_runs_no_node() -> None:
    plan = make_plan(topology("relay", relay_node=False), "pt-t1-")
    assert plan.node_pods() == ["a", "b"]
    assert plan.pods["r"].ip_forward
    assert plan.bootstrap_address("a", "b") == ipaddress.IPv4Address("10.231.1.2")


def test_a_link_to_an_unknown_pod_is_rejected() -> None:
    with pytest.raises(ValidationError, match="known pods"):
        LabSpec(pods=[PodSpec(name="a")], links=[LinkSpec(a="a", b="zz")])


def test_a_prefix_that_would_overflow_interface_names_is_rejected() -> None:
    with pytest.raises(LabSpecError, match="prefix"):
        make_plan(topology("pair"), "much-too-long-prefix-")


def test_an_unknown_topology_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown topology"):
        topology("ring")


def test_an_ipv6_underlay_cuts_slash_64_links_with_the_first_two_hosts() -> None:
    plan = make_plan(topology("chain", underlay="fd31::/48"), "pt-t1-")
    assert plan.ipv6 and plan.spec.link_prefixlen == 64
    assert [str(link.subnet) for link in plan.links] == [
        "fd31::/64",
        "fd31:0:0:1::/64",
        "fd31:0:0:2::/64",
    ]
    assert plan.underlay_address("a", "r1") == ipaddress.IPv6Address("fd31::1")
    assert plan.underlay_address("r1", "a") == ipaddress.IPv6Address("fd31::2")
    assert str(plan.link("r2", "b").address("b")) == "fd31:0:0:2::2/64"


def test_an_ipv6_underlay_routes_every_remote_slash_64_via_the_first_hop() -> None:
    plan = make_plan(topology("chain", underlay="fd31::/48"), "pt-t1-")
    assert plan.pods["a"].routes == (
        Route(ipaddress.IPv6Network("fd31:0:0:1::/64"), ipaddress.IPv6Address("fd31::2")),
        Route(ipaddress.IPv6Network("fd31:0:0:2::/64"), ipaddress.IPv6Address("fd31::2")),
    )
    assert plan.pods["b"].routes == (
        Route(ipaddress.IPv6Network("fd31::/64"), ipaddress.IPv6Address("fd31:0:0:2::1")),
        Route(ipaddress.IPv6Network("fd31:0:0:1::/64"), ipaddress.IPv6Address("fd31:0:0:2::1")),
    )


def test_on_an_ipv6_underlay_nodes_listen_and_bootstrap_on_ip6_and_keep_the_ipv4_overlay() -> None:
    plan = make_plan(topology("relay", underlay="fd31::/48"), "pt-t1-")
    ids = {pod: identity.generate().peer_id for pod in plan.node_pods()}
    member = node_config(plan, "b", creator_hex="ab" * 32, peer_ids=ids)
    assert member.listen == ["/ip6/::/tcp/4001"]
    assert member.bootstrap == [f"/ip6/fd31:0:0:1::1/tcp/4001/p2p/{ids['r']}"]
    assert member.vlans[0].interface.address == "10.250.0.2/24"
    relay = node_config(plan, "r", creator_hex="ab" * 32, peer_ids=ids)
    assert relay.listen == ["/ip6/::/tcp/4001"]


def test_an_ipv4_underlay_still_listens_on_ip4() -> None:
    plan = make_plan(topology("relay"), "pt-t1-")
    ids = {pod: identity.generate().peer_id for pod in plan.node_pods()}
    config = node_config(plan, "a", creator_hex="ab" * 32, peer_ids=ids)
    assert not plan.ipv6
    assert config.listen == ["/ip4/0.0.0.0/tcp/4001"]
    assert config.bootstrap == [f"/ip4/10.231.0.2/tcp/4001/p2p/{ids['r']}"]


def test_the_direct_variant_on_ipv6_dials_across_the_routing_pod() -> None:
    plan = make_plan(topology("relay", relay_node=False, underlay="fd31::/48"), "pt-t1-")
    assert plan.bootstrap_address("a", "b") == ipaddress.IPv6Address("fd31:0:0:1::2")


def test_the_link_size_defaults_per_family() -> None:
    assert LabSpec(pods=[]).link_prefixlen == 24
    assert LabSpec(pods=[], underlay_base="fd31::/48").link_prefixlen == 64
    assert LabSpec(pods=[], underlay_base="fd31:0:0:100::/56").link_prefixlen == 64
    from_file = '{"pods": [], "underlay_base": "fd31::/48"}'  # as `lab up --spec FILE` reads it
    assert LabSpec.model_validate_json(from_file).link_prefixlen == 64


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"underlay_base": "fd31::/60"}, r"at least a /56: every link takes a /64"),
        ({"underlay_base": "10.9.0.0/25"}, r"at least a /24"),
        ({"underlay_base": "fd31::/48", "link_prefixlen": 24}, r"link_prefixlen 24 .* use 64"),
        ({"underlay_base": "10.9.0.0/16", "link_prefixlen": 64}, r"use 24 or 30"),
        ({"underlay_base": "fd31::/48", "link_prefixlen": 48}, r"link_prefixlen"),
        ({"underlay_base": "fd31::1/48"}, r"host bits set"),
        ({"underlay_base": "not-a-network"}, r"does not appear to be an IPv4 or IPv6 network"),
    ],
)
def test_an_underlay_that_does_not_fit_is_rejected_with_the_reason(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        LabSpec.model_validate({"pods": [], **fields})
