"""sidecar_status: sidecars' /status over HTTP (the sidecar's own API) and the reductions."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from sidecar_api import API_PORT, serving, snapshot

from peertap.operator import sidecar_status as ss

VLAN = "ab" * 16


def vr(epoch: int, mls_id: str, vlan_id: str = VLAN) -> ss.VlanReport:
    return ss.VlanReport(vlan_id=vlan_id, epoch=epoch, mls_id=mls_id)


def test_fetch_reads_each_answering_sidecar_and_skips_the_silent_ones() -> None:
    a = snapshot("12D3KooWa", peers=["12D3KooWb"], vlans=[(VLAN, 4, "aa" * 16)])
    b = snapshot("12D3KooWb", peers=["12D3KooWa"], vlans=[(VLAN, 3, "bb" * 16)])
    # 127.0.0.13 refuses connections; 127.0.0.14 accepts but never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.14", API_PORT))
    silent.listen(8)
    try:
        with serving("127.0.0.11", a), serving("127.0.0.12", b):
            reports = asyncio.run(
                ss.fetch_reports(
                    {
                        "a": "127.0.0.11",
                        "b": "127.0.0.12",
                        "refused": "127.0.0.13",
                        "silent": "127.0.0.14",
                    },
                    timeout_s=0.5,
                    concurrency=2,
                )
            )
    finally:
        silent.close()
    assert sorted(reports) == ["a", "b"]
    assert reports["a"] == ss.Report(
        peer_id="12D3KooWa",
        peers=frozenset({"12D3KooWb"}),
        vlans={VLAN: vr(4, "aa" * 16)},
    )
    assert reports["b"].vlans[VLAN] == vr(3, "bb" * 16)


def test_fetch_of_no_targets_makes_no_request() -> None:
    assert asyncio.run(ss.fetch_reports({})) == {}


def test_a_sidecar_answering_nonsense_is_not_counted() -> None:
    broken = snapshot("12D3KooWa", vlans=[(VLAN, 1, "aa" * 16)])
    broken["vlans"][0]["epoch"] = "one"
    with serving("127.0.0.15", broken):
        assert asyncio.run(ss.fetch_reports({"x": "127.0.0.15"})) == {}


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ([], "JSON object"),
        ({"peers": []}, "peer_id"),
        ({"peer_id": "p", "peers": "q"}, "peers"),
        ({"peer_id": "p", "vlans": {}}, "vlans"),
        ({"peer_id": "p", "vlans": [{"vlan_id": VLAN, "epoch": 1}]}, "mls_id"),
        ({"peer_id": "p", "vlans": [{"vlan_id": VLAN, "epoch": True, "mls_id": ""}]}, "epoch"),
        ({"peer_id": "p", "vlans": [{"vlan_id": VLAN, "epoch": -1, "mls_id": ""}]}, "epoch"),
    ],
)
def test_malformed_status_documents_are_refused_naming_the_field(doc: Any, problem: str) -> None:
    with pytest.raises(ss.ReportError, match=problem):
        ss.parse_report(doc)


def test_a_joining_sidecar_without_vlans_parses() -> None:
    assert ss.parse_report({"peer_id": "p"}) == ss.Report(peer_id="p")


def test_consensus_is_what_most_members_report() -> None:
    reports = [vr(5, "new"), vr(4, "old"), vr(4, "old")]
    assert ss.vlan_consensus(reports) == vr(4, "old")


def test_consensus_tie_goes_to_the_newest_epoch() -> None:
    assert ss.vlan_consensus([vr(4, "old"), vr(5, "new")]) == vr(5, "new")
    assert ss.vlan_consensus([vr(5, "new"), vr(4, "old")]) == vr(5, "new")


def test_no_reports_mean_no_consensus() -> None:
    assert ss.vlan_consensus([]) is None


def test_peers_seen_counts_distinct_peers_other_than_the_reporters() -> None:
    r0 = ss.Report(peer_id="r0", peers=frozenset({"r1", "m1", "m2"}))
    r1 = ss.Report(peer_id="r1", peers=frozenset({"r0", "m2", "m3", "r2"}))
    assert ss.peers_seen([r0, r1]) == 4  # m1 m2 m3 r2
    assert ss.peers_seen([r0, r1], exclude=["r2"]) == 3
    assert ss.peers_seen([]) == 0


@pytest.mark.parametrize(
    ("pod", "ip"),
    [
        ({"status": {"podIP": "10.1.2.3"}}, "10.1.2.3"),
        ({"status": {}}, None),
        ({}, None),
        ({"metadata": {"deletionTimestamp": "x"}, "status": {"podIP": "10.1.2.3"}}, None),
    ],
)
def test_pod_ip_is_the_status_ip_of_a_live_pod(pod: dict[str, Any], ip: str | None) -> None:
    assert ss.pod_ip(pod) == ip


def test_status_url_brackets_ipv6() -> None:
    assert ss.status_url("fd00::1") == "http://[fd00::1]:9464/status"
    assert ss.status_url("10.0.0.1", 1) == "http://10.0.0.1:1/status"
