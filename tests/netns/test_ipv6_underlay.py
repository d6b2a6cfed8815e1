"""The relay topology on an IPv6-only underlay: real `peertap run` processes whose trunks
run over IPv6 carry the (IPv4) overlay between a and b, directly across a routing pod or
through a pure relay, and DATA goes in UDP datagrams over IPv6 (sized for IPv6 headers),
not only on the trunk stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from overlay_checks import pings, wait_until

from peertap.sidecar.lab import IPV6_UNDERLAY, Lab, topology

pytestmark = pytest.mark.netns


def addresses(lab: Lab, pod: str, ifname: str, family: str) -> str:
    out = lab.exec(
        pod, ["ip", "-o", family, "addr", "show", "dev", ifname], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def trunks_to(lab: Lab, pod: str, address: str) -> bool:
    """Whether `pod` holds an established TCP connection to `address`'s trunk port."""
    out = lab.exec(pod, ["ss", "-Htn", "state", "established"], capture_output=True, text=True)
    return f"[{address}]:4001" in out.stdout


def datagram_path(lab: Lab, pod: str, peer_pod: str) -> dict[str, Any]:
    """What `pod`'s /status says of its datagram path to `peer_pod`."""
    peer_id = lab.status(peer_pod)["peer_id"]
    path: dict[str, Any] = lab.status(pod).get("transports", {}).get(peer_id, {})
    return path


def underlay_pings(lab: Lab, src: str, address: str) -> bool:
    r = lab.exec(src, ["ping", "-6", "-c1", "-W1", address], capture_output=True)
    return r.returncode == 0


@pytest.mark.parametrize("via", ["relay", "routing-pod"])
def test_the_overlay_crosses_an_ipv6_only_underlay(
    lab_factory: Callable[..., Lab], via: str
) -> None:
    lab = lab_factory(
        topology("relay", relay_node=via == "relay", underlay=IPV6_UNDERLAY).model_copy(
            update={"trace": False}
        )
    )
    for pod in lab.pods:
        for link in lab.plan.links_of(pod):
            ifname = link.ifname(pod)
            assert addresses(lab, pod, ifname, "-4") == "", f"IPv4 on {pod}'s {ifname}"
            assert f"{link.address(pod)} scope global" in addresses(lab, pod, ifname, "-6")
    lab.wait_ready(timeout=30)
    b_underlay = lab.underlay_address("b", "r")
    if via == "relay":
        # r does not route: the overlay can only cross through the relay's trunks.
        assert not underlay_pings(lab, "a", b_underlay)
        first_hop = lab.underlay_address("r", "a")
    else:
        wait_until("a's underlay ping to b", lambda: underlay_pings(lab, "a", b_underlay), 20)
        first_hop = b_underlay
    wait_until(f"a's trunk over IPv6 to {first_hop}", lambda: trunks_to(lab, "a", first_hop), 30)
    wait_until("ping a -> b over the overlay", lambda: pings(lab, "a", "b"), 40)
    assert pings(lab, "b", "a", count=3)
    # DATA to the first hop goes in datagrams over IPv6: the path is up, and its probed
    # size is the 1,500-byte route less IPv6 and UDP headers (48 bytes), not IPv4's 28.
    hop = "r" if via == "relay" else "b"
    wait_until(
        f"a's datagram path to {hop} over IPv6",
        lambda: datagram_path(lab, "a", hop).get("transport") == "datagram",
        30,
    )
    sent = datagram_path(lab, "a", hop)["datagrams_sent"]
    assert pings(lab, "a", "b", count=3)
    path = datagram_path(lab, "a", hop)
    assert path["datagram_size"] == 1452, path
    assert path["datagrams_sent"] > sent, path
