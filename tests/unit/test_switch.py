"""Switch pieces: destination classes, IGMP/MLD snooping, VFT routes, ACL, dedup, ageing."""

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peertap.sidecar import vft, wire
from peertap.sidecar.announcements import digest_of
from peertap.sidecar.switch.acl import Acl
from peertap.sidecar.switch.classify import Dest, classify, ipv4_group_mac, snoop
from peertap.sidecar.switch.dedup import Dedup
from peertap.sidecar.switch.local import GROUP_MEMBERSHIP_S, MAC_AGEING_S, LocalPort
from peertap.sidecar.switch.routes import RouteTable

V1, V2 = b"\x11" * 16, b"\x22" * 16


@pytest.mark.parametrize(
    ("mac", "dest"),
    [
        ("02:00:00:00:00:01", Dest.UNICAST),
        ("ff:ff:ff:ff:ff:ff", Dest.FLOOD),
        ("01:00:5e:00:00:fb", Dest.FLOOD),  # 224.0.0.251 mDNS: link-local, flooded
        ("01:00:5e:01:02:03", Dest.GROUP),
        ("33:33:00:00:00:01", Dest.FLOOD),
        ("33:33:ff:12:34:56", Dest.FLOOD),  # solicited-node
        ("33:33:00:01:00:03", Dest.GROUP),
        ("01:80:c2:00:00:00", Dest.FLOOD),  # non-IP multicast
    ],
)
def test_destination_classes(mac, dest):
    assert classify(bytes.fromhex(mac.replace(":", ""))) is dest


def _eth(ethertype, payload, dst=b"\x01\x00\x5e\x00\x00\x16"):
    return dst + b"\x02" * 6 + struct.pack(">H", ethertype) + payload


def _ipv4(proto, payload):
    return bytes([0x45, 0, 0, 20 + len(payload), 0, 0, 0, 0, 1, proto, 0, 0]) + bytes(8) + payload


def test_igmpv2_report_and_leave_are_snooped():
    g = ipaddress.IPv4Address("239.1.2.3").packed
    join = _eth(0x0800, _ipv4(2, bytes([0x16, 0, 0, 0]) + g))
    leave = _eth(0x0800, _ipv4(2, bytes([0x17, 0, 0, 0]) + g))
    assert snoop(join) == ([ipv4_group_mac(g)], [])
    assert snoop(leave) == ([], [ipv4_group_mac(g)])


def test_igmpv3_report_with_join_and_leave_records():
    g1 = ipaddress.IPv4Address("239.9.9.9").packed
    g2 = ipaddress.IPv4Address("239.8.8.8").packed
    records = bytes([4, 0, 0, 0]) + g1 + bytes([3, 0, 0, 0]) + g2
    msg = bytes([0x22, 0, 0, 0, 0, 0, 0, 2]) + records
    assert snoop(_eth(0x0800, _ipv4(2, msg))) == ([ipv4_group_mac(g1)], [ipv4_group_mac(g2)])


def test_mldv2_report_is_snooped():
    g = ipaddress.IPv6Address("ff05::1:3").packed
    msg = bytes([143, 0, 0, 0, 0, 0, 0, 1]) + bytes([4, 0, 0, 0]) + g
    ip6 = bytes([0x60, 0, 0, 0]) + struct.pack(">HBB", len(msg), 58, 1) + bytes(32)
    assert snoop(_eth(0x86DD, ip6 + msg, dst=b"\x33\x33\x00\x00\x00\x16")) == (
        [b"\x33\x33" + g[12:]],
        [],
    )


@given(st.binary(max_size=200))
def test_snooping_garbage_never_raises(data):
    joins, leaves = snoop(data)
    assert isinstance(joins, list) and isinstance(leaves, list)


def _ann(origin, seq, tokens, dist=0, hop=8, vlan=V1):
    return wire.Announce(hop, origin * 2, vlan, seq, dist, tuple(tokens))


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def learn(r, peer, ann):
    return r.learn(peer, ann, digest=digest_of(ann))


def test_routes_follow_the_shortest_announcement_and_forget_dropped_peers():
    r = RouteTable(ttl_s=30)
    t = (V1, b"t" * 16)
    assert learn(r, "far", _ann(b"o" * 16, 1, [t[1]], dist=3)).fresh
    assert r.next_hops(*t) == ("far",)
    learned = learn(r, "near", _ann(b"o" * 16, 1, [t[1]], dist=1))
    assert not learned.fresh and learned.changed
    assert r.next_hops(*t) == ("near",)
    r.drop_peer("near")
    assert r.next_hops(*t) == ("far",)
    r.drop_peer("far")
    assert r.next_hops(*t) == ()


def test_old_sequence_numbers_are_ignored_and_new_ones_replace_entries():
    r = RouteTable(ttl_s=30)
    a, b = b"a" * 16, b"b" * 16
    learn(r, "p", _ann(b"o" * 16, 5, [a]))
    old = learn(r, "p", _ann(b"o" * 16, 4, [b]))
    assert not old.fresh and old.replayed
    assert r.wanted(V1, a) and not r.wanted(V1, b)
    learn(r, "p", _ann(b"o" * 16, 6, [b]))
    assert r.wanted(V1, b) and not r.wanted(V1, a)


def test_one_origin_keeps_separate_routes_per_vlan():
    r = RouteTable(ttl_s=30)
    learn(r, "p", _ann(b"o" * 16, 5, [b"a" * 16], vlan=V1))
    learn(r, "p", _ann(b"o" * 16, 6, [b"b" * 16], vlan=V2))
    assert r.wanted(V1, b"a" * 16) and r.wanted(V2, b"b" * 16)
    # An empty announcement for one VLAN withdraws only that VLAN's tokens.
    learn(r, "p", _ann(b"o" * 16, 7, [], vlan=V1))
    assert not r.wanted(V1, b"a" * 16) and r.wanted(V2, b"b" * 16)


def test_a_copy_with_the_same_sequence_but_other_content_is_not_a_path():
    r = RouteTable(ttl_s=30)
    learn(r, "p", _ann(b"o" * 16, 5, [b"a" * 16]))
    forged = learn(r, "q", _ann(b"o" * 16, 5, [b"z" * 16], dist=0))
    assert not forged.fresh and not forged.changed
    assert r.next_hops(V1, b"a" * 16) == ("p",) and not r.wanted(V1, b"z" * 16)


def test_an_expired_origin_cannot_be_brought_back_by_an_older_announcement():
    clock = Clock()
    r = RouteTable(ttl_s=30, clock=clock)
    learn(r, "p", _ann(b"o" * 16, 9, [b"a" * 16]))
    clock.t = 31
    assert r.expire()
    assert learn(r, "q", _ann(b"o" * 16, 8, [b"a" * 16])).replayed
    assert not r.wanted(V1, b"a" * 16)
    # The same announcement again (a trunk came back) and newer ones are taken.
    assert learn(r, "q", _ann(b"o" * 16, 9, [b"a" * 16])).fresh


def test_many_origins_wanting_a_token_give_every_path():
    r = RouteTable(ttl_s=30)
    bc = vft.broadcast(V1, b"s" * 16)
    learn(r, "x", _ann(b"1" * 16, 1, [bc]))
    learn(r, "y", _ann(b"2" * 16, 1, [bc]))
    assert r.next_hops(V1, bc) == ("x", "y")


def test_routes_expire_unless_refreshed():
    clock = Clock()
    r = RouteTable(ttl_s=30, clock=clock)
    t = b"t" * 16
    learn(r, "p", _ann(b"o" * 16, 1, [t]))
    clock.t = 31
    assert r.expire()
    assert r.next_hops(V1, t) == ()


def test_replay_for_a_new_neighbour_skips_routes_learned_from_it():
    r = RouteTable(ttl_s=30)
    learn(r, "p", _ann(b"o" * 16, 1, [b"a" * 16], dist=2))
    assert list(r.replay_for("p")) == []
    [a] = r.replay_for("q")
    assert a.origin == b"o" * 32 and a.distance == 2 and a.tokens == (b"a" * 16,)


@pytest.mark.parametrize(
    ("mode", "allow", "deny", "vlan", "ok"),
    [
        ("open", [], [], V2, True),
        ("restricted", [], [], V1, True),
        ("restricted", [], [], V2, False),
        ("list", ["22*"], [], V2, True),
        ("list", ["22*"], [], V1, False),
        ("list", ["*"], ["2222*"], V2, False),
        ("list", ["11??" + "1" * 28], [], V1, True),
    ],
)
def test_acl_modes(mode, allow, deny, vlan, ok):
    assert Acl(mode=mode, members=[V1], allow=allow, deny=deny).allows(vlan) is ok


def test_dedup_forwards_each_packet_once_with_bounded_memory():
    d = Dedup(size=4)
    assert d.first_time(b"a") and not d.first_time(b"a")
    for i in range(20):
        assert d.first_time(bytes([i]) * 2)
    assert len(d._new) <= 4 and len(d._old) <= 4


def test_learned_macs_and_groups_age_out_but_own_mac_stays():
    clock = Clock()
    own = b"\x02\x00\x00\x00\x00\x01"
    port = LocalPort(own_mac=own, clock=clock)
    assert port.learn_source(b"\x02\x00\x00\x00\x00\x09")
    assert not port.learn_source(own)
    assert not port.learn_source(b"\x01\x00\x5e\x00\x00\x01")
    port.join(b"\x01\x00\x5e\x01\x01\x01")
    tokens = vft.TokenCache(V1, b"s" * 16)
    assert len(port.tokens(tokens)) == 4
    clock.t = max(MAC_AGEING_S, GROUP_MEMBERSHIP_S) + 1
    assert port.expire()
    assert port.tokens(tokens) == {tokens.broadcast, tokens.unicast(own)}


def test_tokens_depend_on_mac_vlan_and_salt():
    mac = b"\x02" * 6
    assert vft.unicast(mac, V1, b"s" * 16) != vft.unicast(mac, V2, b"s" * 16)
    assert vft.unicast(mac, V1, b"s" * 16) != vft.unicast(mac, V1, b"t" * 16)
    assert vft.broadcast(V1, b"s" * 16) != vft.broadcast(V2, b"s" * 16)
    # Broadcast and multicast tokens are salted too: without the key no relay can
    # test a guess of the VLAN-ID or of a multicast group.
    assert vft.broadcast(V1, b"s" * 16) != vft.broadcast(V1, b"t" * 16)
    group = b"\x01\x00\x5e\x01\x02\x03"
    assert vft.multicast(group, V1, b"s" * 16) != vft.multicast(group, V1, b"t" * 16)


def test_route_table_refuses_new_origins_beyond_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from peertap.sidecar.switch import routes

    monkeypatch.setattr(routes, "MAX_ORIGINS", 3)
    r = RouteTable(ttl_s=30)
    results = [learn(r, "p", _ann(bytes([i]) * 16, 1, [bytes([i]) * 16])) for i in range(5)]
    assert [x.refused for x in results] == [False, False, False, True, True]
    assert r.sizes() == {"origins": 3, "tokens": 3}
    # Known origins still refresh.
    assert not learn(r, "p", _ann(b"\x00" * 16, 2, [b"z" * 16])).refused


def test_route_table_refuses_entries_beyond_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from peertap.sidecar.switch import routes

    monkeypatch.setattr(routes, "MAX_ENTRIES", 4)
    r = RouteTable(ttl_s=30)
    many = [bytes([i]) * 16 for i in range(3)]
    assert not learn(r, "p", _ann(b"a" * 16, 1, many)).refused
    assert learn(r, "p", _ann(b"b" * 16, 1, many)).refused
    assert r.sizes()["origins"] == 1
