"""A TUN member speaks full IPv6: it answers neighbour solicitations for every address
its interface holds as the kernel has them (its link-local address, addresses added
after the node started), followed over netlink; real nodes, real TUN and TAP."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from test_overlay import wait_ping, wait_until

from peertap.sidecar.lab import Lab, topology

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def link_local(lab: Lab, pod: str) -> str:
    out = lab.exec(
        pod,
        ["ip", "-j", "-6", "addr", "show", "dev", "pt-lab", "scope", "link"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (address,) = [a["local"] for i in json.loads(out) for a in i["addr_info"]]
    return str(address)


def ping6(lab: Lab, pod: str, address: str, count: int = 3) -> bool:
    argv = ["ping", "-6", "-c", str(count), "-W", "1", "-i", "0.2", "-I", "pt-lab", address]
    return lab.exec(pod, argv, capture_output=True).returncode == 0


def test_a_tun_member_answers_for_its_link_local_and_later_added_addresses(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(topology("pair").model_copy(update={"trace": False}), start_nodes=False)
    cfg_path = lab.config_path("a")
    cfg = json.loads(cfg_path.read_text())
    cfg["vlans"][0]["interface"]["mode"] = "tun"
    cfg_path.write_text(json.dumps(cfg))
    for pod in lab.pods:
        lab.start_node(pod)
    lab.wait_ready(timeout=30)
    wait_ping(lab, "b", "a")
    # The kernel's own link-local address of a's TUN, never written in any config.
    a_ll = link_local(lab, "a")
    assert a_ll.startswith("fe80:")
    wait_until(f"ping6 b -> {a_ll}", lambda: ping6(lab, "b", a_ll, count=1), timeout=20)
    assert ping6(lab, "b", a_ll)
    # An address added to the TUN after the node started, and one on b to reach it from.
    lab.exec("b", ["ip", "-6", "addr", "add", "fd0c::2/64", "dev", "pt-lab", "nodad"], check=True)
    lab.exec("a", ["ip", "-6", "addr", "add", "fd0c::1/64", "dev", "pt-lab"], check=True)
    wait_until("ping6 b -> fd0c::1", lambda: ping6(lab, "b", "fd0c::1", count=1), timeout=20)
    assert ping6(lab, "b", "fd0c::1")
    # Removed again: a's node stops answering for it, so b cannot resolve it any more.
    lab.exec("a", ["ip", "-6", "addr", "del", "fd0c::1/64", "dev", "pt-lab"], check=True)
    lab.exec("b", ["ip", "-6", "neigh", "flush", "dev", "pt-lab"], check=True)
    assert not ping6(lab, "b", "fd0c::1", count=2)
