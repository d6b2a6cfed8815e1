"""Address allocation: never collides, never leaves the subnet, keeps what it gave."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peertap.operator import ipam

keys = st.lists(st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True), max_size=40, unique=True)
prefixes = st.integers(min_value=24, max_value=30)


@settings(deadline=None)
@given(wanted=keys, prefix=prefixes, previous=keys)
def test_allocations_never_collide_and_stay_in_the_subnet(
    wanted: list[str], prefix: int, previous: list[str]
) -> None:
    subnet = ipam.parse_subnet(f"10.9.8.0/{prefix}")
    usable = subnet.num_addresses - 2
    try:
        existing = ipam.allocate(subnet=subnet, existing={}, wanted=previous[:usable])
    except ipam.IpamError:
        existing = {}
    if len(wanted) > usable:
        with pytest.raises(ipam.IpamError):
            ipam.allocate(subnet=subnet, existing=existing, wanted=wanted)
        return
    result = ipam.allocate(subnet=subnet, existing=existing, wanted=wanted)
    assert sorted(result) == sorted(wanted)
    ips = [ipaddress.ip_interface(a) for a in result.values()]
    assert len({i.ip for i in ips}) == len(ips)
    for i in ips:
        assert i.network == subnet
        assert i.ip not in (subnet.network_address, subnet.broadcast_address)
    for key in set(wanted) & set(existing):
        assert result[key] == existing[key]


def test_released_addresses_are_reused_lowest_first() -> None:
    subnet = ipam.parse_subnet("10.250.0.0/24")
    first = ipam.allocate(subnet=subnet, existing={}, wanted=["a", "b", "c"])
    assert first == {"a": "10.250.0.1/24", "b": "10.250.0.2/24", "c": "10.250.0.3/24"}
    second = ipam.allocate(subnet=subnet, existing=first, wanted=["c", "d"])
    assert second == {"c": "10.250.0.3/24", "d": "10.250.0.1/24"}


def test_foreign_or_duplicate_records_are_reallocated() -> None:
    subnet = ipam.parse_subnet("10.250.0.0/29")
    result = ipam.allocate(
        subnet=subnet,
        existing={"a": "10.1.0.5/29", "b": "10.250.0.2/29", "c": "10.250.0.2/29", "d": "junk"},
        wanted=["a", "b", "c", "d"],
    )
    assert result["b"] == "10.250.0.2/29"
    assert len(set(result.values())) == 4


def test_ipv6_subnets_skip_the_subnet_router_address() -> None:
    subnet = ipam.parse_subnet("fd00:1::/126")
    assert ipam.allocate(subnet=subnet, existing={}, wanted=["a", "b", "c"]) == {
        "a": "fd00:1::1/126",
        "b": "fd00:1::2/126",
        "c": "fd00:1::3/126",
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("10.0.0.1/24", "has host bits set"),
        ("10.0.0.0/33", "not a valid network"),
        ("banana", "not a valid network"),
        ("10.0.0.0/31", "too small"),
    ],
)
def test_bad_subnets_are_rejected_with_the_reason(text: str, fragment: str) -> None:
    with pytest.raises(ipam.IpamError, match=fragment):
        ipam.parse_subnet(text)
