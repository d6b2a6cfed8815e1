"""What the UI, `peertap status` and `peertap topology` make of a status document."""

from __future__ import annotations

from typing import Any

from peertap.sidecar.ui import graph, text, view

ME = "12D3KooWSelfSelfSelfSelf1"
RELAY = "12D3KooWRelayRelayRelay22"
FAR = "12D3KooWFarMemberFarMem33"
NEAR = "12D3KooWNearMemberNear444"
LAB = "ab" * 16
OTHER = "ef" * 16


def status(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ready": True,
        "version": "0.1.0",
        "peer_id": ME,
        "listen": ["/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.1/tcp/4002/ws"],
        "peers": [RELAY, NEAR],
        "relay": {"enabled": False, "acl": "restricted"},
        "vlans": [
            {
                "label": "lab",
                "vlan_id": LAB,
                "interface": "pt-lab",
                "mac": "02:00:00:00:00:01",
                "address": "10.250.0.1/24",
                "security": "mls",
                "epoch": 3,
                "mls_id": "cd" * 16,
                "members": 3,
                "mls_state": "member",
                "epoch_secret": "must-not-show",
            }
        ],
        # distance counts the relays between: 0 is a trunk peer's own announcement.
        "origins": [
            {"node": FAR, "vlan_id": LAB, "distance": 2, "via": RELAY, "tokens": 4},
            {"node": NEAR, "vlan_id": LAB, "distance": 0, "via": NEAR, "tokens": 2},
            {"node": NEAR, "vlan_id": OTHER, "distance": 0, "via": NEAR, "tokens": 1},
        ],
        "trunk_peers": {RELAY: {"bytes_sent": 100, "bytes_received": 50, "drops": 0}},
        "paths": {NEAR: {"rank": 0, "rtt_ms": 0.42, "stalled": False}, RELAY: {"rtt_ms": None}},
        "counters": {"events": {"tx": 5}, "drops": {"auth": 2, "no_route": 7}},
        "routes": {"origins": 2, "tokens": 6},
        "time": 1.5,
    }
    doc.update(extra)
    return doc


def test_topology_has_trunks_to_peers_and_paths_to_far_origins() -> None:
    topo = graph.from_status(status())
    roles = {n.id: (n.role, n.distance, n.direct) for n in topo.nodes}
    assert roles == {
        ME: ("self", 0, False),
        RELAY: ("relay", 1, True),
        NEAR: ("member", 1, True),
        FAR: ("member", 3, False),
    }
    edges = {(e.a, e.b, e.kind, e.hops) for e in topo.edges}
    assert edges == {(ME, RELAY, "trunk", 1), (ME, NEAR, "trunk", 1), (RELAY, FAR, "path", 2)}


def test_an_origin_whose_neighbour_is_gone_hangs_off_this_node() -> None:
    doc = status(peers=[], origins=[{"node": FAR, "distance": 1, "via": RELAY, "tokens": 1}])
    topo = graph.from_status(doc)
    assert [(e.a, e.b, e.hops) for e in topo.edges] == [(ME, FAR, 2)]


def test_a_status_without_origins_or_peers_is_just_this_node() -> None:
    topo = graph.from_status({"peer_id": ME, "relay": {"enabled": True}})
    assert [(n.id, n.role) for n in topo.nodes] == [(ME, "relay")]
    assert graph.to_text(topo) == f"{ME} (this node, relay)\n"


def test_an_origin_on_several_vlans_is_one_node_with_all_its_vlans() -> None:
    near = graph.from_status(status()).node(NEAR)
    assert near is not None and near.vlans == (LAB, OTHER) and near.tokens == 3


def test_text_tree_nests_far_origins_under_their_neighbour() -> None:
    tree = graph.to_text(graph.from_status(status()))
    assert tree.splitlines() == [
        f"{ME} (this node)",
        f"├── {NEAR} (member, trunk, 3 tokens)",
        f"└── {RELAY} (relay, trunk)",
        f"    └── {FAR} (member, 3 hops, 4 tokens, via a 2-hop path)",
    ]


def test_dot_quotes_ids_and_dashes_multi_hop_paths() -> None:
    dot = graph.to_dot(graph.from_status(status()))
    assert dot.startswith("graph peertap {")
    assert f'"{ME}" -- "{RELAY}";' in dot
    assert f'"{RELAY}" -- "{FAR}" [style=dashed, label="2 hops"];' in dot
    assert "\\n" in dot and "\n\n" not in dot


def test_view_keeps_only_allow_listed_fields_and_marks_rtt_unmeasured() -> None:
    v = view.build(status())
    assert "epoch_secret" not in str(v) and "must-not-show" not in str(v)
    assert v["vlans"][0]["address"] == "10.250.0.1/24"
    assert v["node"]["transports"] == ["tcp", "ws"]
    relay = next(t for t in v["trunks"] if t["peer"] == RELAY)
    assert relay["rtt_ms"] is None and relay["transport"] is None
    assert relay["bytes_sent"] == 100
    near = next(t for t in v["trunks"] if t["peer"] == NEAR)
    assert near["bytes_sent"] is None
    assert near["rtt_ms"] == 0.42 and near["path_rank"] == 0  # measured by path probes
    assert v["drops"] == {"auth": 2, "no_route": 7}
    assert v["controls"] == {"join_leave": False}
    assert set(v["vlans"][0]["member_nodes"]) == {NEAR, FAR}


def test_view_of_an_old_status_without_new_fields() -> None:
    doc = status()
    for key in ("origins", "trunk_peers"):
        del doc[key]
    del doc["vlans"][0]["address"]
    v = view.build(doc)
    assert v["vlans"][0]["address"] is None
    assert [n["role"] for n in v["topology"]["nodes"]] == ["self", "relay", "relay"]


def test_human_status_names_vlans_trunks_and_drops() -> None:
    out = text.render(view.build(status()))
    assert f"node     {ME}" in out
    assert "pt-lab" in out and "10.250.0.1/24" in out and "mls" in out
    assert "not measured" in out
    assert "drops    no_route 7, auth 2" in out
    assert "must-not-show" not in out


def test_view_offers_join_and_leave_only_when_allowed_and_not_for_mls() -> None:
    left = {
        "label": "side",
        "vlan_id": OTHER,
        "interface": "pt-side",
        "address": None,
        "security": "psk",
        "readable_by": "holders of the pre-shared secret",
        "joined": False,
    }
    doc = status(vlans=[*status()["vlans"], left])
    closed = view.build(doc)
    assert closed["controls"] == {"join_leave": False}
    assert [(v["joined"], v["controllable"]) for v in closed["vlans"]] == [
        (True, False),
        (False, False),
    ]
    open_ = view.build(doc, join_leave=True)
    assert open_["controls"] == {"join_leave": True}
    assert [(v["joined"], v["controllable"]) for v in open_["vlans"]] == [
        (True, False),  # mls: membership follows the MLS group
        (False, True),
    ]
    assert open_["vlans"][1]["mac"] is None
    assert "left" in text.render(open_)
