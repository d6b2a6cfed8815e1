"""The node's management VLAN: credential files, signature checks, once-only flooding."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import trio
import trio.testing
from sim_runs import mvlan

from peertap.sidecar import identity, ids, stamps, wire
from peertap.sidecar.config import LimitsConfig, VlanConfig
from peertap.sidecar.counters import Counters
from peertap.sidecar.freshness import StampGuard
from peertap.sidecar.private import authority, envelope
from peertap.sidecar.private import messages as m
from peertap.sidecar.private.mvlan import CredentialFile, CredentialFileError, Mvlan
from peertap.sidecar.switch.acl import Acl

AUTH = identity.generate()
NODE = identity.generate()
OTHER = identity.generate()
VLAN = ids.vlan_id(AUTH.public_bytes, "lab")


def _mvlan(
    *,
    relay: bool,
    sent: list[tuple[str, list[bytes]]] | None = None,
    acl: Acl | None = None,
    limits: LimitsConfig | None = None,
) -> Mvlan:
    def send(peer: str, packets: list[bytes]) -> bool:
        if sent is not None:
            sent.append((peer, packets))
        return True

    return Mvlan(
        identity=NODE,
        counters=Counters(),
        hop_limit=8,
        relay=relay,
        acl=acl or Acl(mode="open"),
        limits=limits or LimitsConfig(),
        peers=lambda: ["p1", "p2", "p3"],
        send=send,
    )


def _credential(tmp_path: Path, *, days: int = 1) -> Path:
    now = dt.datetime.now(dt.UTC)
    path = tmp_path / "lab.cred"
    path.write_bytes(
        authority.issue(
            authority=AUTH,
            member_identity="lab/a",
            member_key=NODE.public_bytes,
            vlan_id=VLAN,
            issued=now,
            expires=now + dt.timedelta(days=days),
        ).encode()
    )
    return path


def _vlan(credential: str) -> VlanConfig:
    return VlanConfig(label="lab", creator=AUTH.public_hex, security="mls", credential=credential)


def _packet(
    hop_limit: int = 5,
    timestamp: int | None = None,
    signer: identity.Identity = OTHER,
    vlan_id: bytes = VLAN,
) -> bytes:
    hello = m.Hello(m.NO_GROUP, 0, bytes(16), 0, b"{}")
    return envelope.sign(
        signer,
        hop_limit=hop_limit,
        timestamp=stamps.now_us() if timestamp is None else timestamp,
        vlan_id=vlan_id,
        kind=m.HELLO,
        body=hello.encode(),
    ).encode()


def test_missing_credential_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialFileError, match="cannot read credential"):
        _mvlan(relay=False).add_vlan(
            _vlan("absent.cred"), vlan_id=VLAN, base_dir=tmp_path, on_epoch=lambda: None
        )


def test_unparsable_credential_file_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "bad.cred").write_text("not a credential")
    with pytest.raises(CredentialFileError, match="not a signed document"):
        _mvlan(relay=False).add_vlan(
            _vlan("bad.cred"), vlan_id=VLAN, base_dir=tmp_path, on_epoch=lambda: None
        )


def test_credential_file_relative_to_the_config_dir_gives_a_joining_vlan(tmp_path: Path) -> None:
    _credential(tmp_path)
    mv = _mvlan(relay=False)
    keys = mv.add_vlan(_vlan("lab.cred"), vlan_id=VLAN, base_dir=tmp_path, on_epoch=lambda: None)
    assert not keys.joined
    assert mv.status(VLAN)["mls_state"] == "joining"
    assert mv.status(b"\x00" * 16) == {}


def test_credential_file_reports_a_change_once(tmp_path: Path) -> None:
    path = _credential(tmp_path)
    f = CredentialFile(path, label="lab")
    first = f.load()
    assert f.changed() is None
    (tmp_path / "new").mkdir()
    renewed = _credential(tmp_path / "new", days=30)
    path.write_bytes(renewed.read_bytes() + b"\n")
    assert f.changed() == renewed.read_bytes() != first
    assert f.changed() is None
    path.write_text("garbage that does not parse")
    assert f.changed() is None
    assert f.data == renewed.read_bytes()


def test_relay_floods_a_control_packet_once_to_every_other_peer() -> None:
    mv = _mvlan(relay=True)
    floods: dict[str, list[bytes]] = {}
    packet = _packet(hop_limit=5)
    mv.on_control("p1", packet, floods)
    assert sorted(floods) == ["p2", "p3"]
    assert wire.decode_control(floods["p2"][0]).hop_limit == 4
    again: dict[str, list[bytes]] = {}
    mv.on_control("p2", packet, again)
    assert again == {}
    assert mv.counters.drops["control_duplicate"] == 1


@pytest.mark.parametrize(
    ("age_s", "reason"), [(61, "control_stale"), (-61, "control_future"), (3600, "control_stale")]
)
def test_control_packets_outside_the_skew_window_change_nothing(age_s: int, reason: str) -> None:
    mv = _mvlan(relay=True)
    floods: dict[str, list[bytes]] = {}
    mv.on_control("p1", _packet(timestamp=stamps.now_us() - age_s * stamps.US), floods)
    assert floods == {} and mv.counters.events["control_rx"] == 0
    assert mv.counters.drops[reason] == 1


def test_a_replay_stays_refused_after_a_flood_of_self_signed_junk_fills_the_guard() -> None:
    mv = _mvlan(relay=True, limits=LimitsConfig(control_per_trunk_per_s=10_000))
    mv.seen = StampGuard(max_keys=4)
    genuine = _packet()
    mv.on_control("p1", genuine, {})
    # Junk from fresh keys pushes the genuine signer out of the bounded guard ...
    for _ in range(8):
        mv.on_control("p2", _packet(signer=identity.generate()), {})
    assert len(mv.seen) == 4
    # ... but the floor it leaves behind still refuses the replay.
    floods: dict[str, list[bytes]] = {}
    mv.on_control("p3", genuine, floods)
    assert floods == {}
    assert mv.counters.events["control_rx"] == 9
    assert mv.counters.drops["control_duplicate"] == 1


def test_a_trunk_that_floods_control_is_limited_and_others_are_not() -> None:
    mv = _mvlan(relay=True, limits=LimitsConfig(control_per_trunk_per_s=5))
    for _ in range(40):
        with contextlib.suppress(wire.MalformedPacket):  # the node counts these
            mv.on_control("p1", bytes([wire.VERSION, 3, 5, 0]) + b" junk", {})
    assert mv.counters.drops["control_rate_trunk"] == 30
    mv.on_control("p2", _packet(), {})
    assert mv.counters.events["control_rx"] == 1


def test_one_signer_is_limited_whatever_trunk_it_comes_from() -> None:
    mv = _mvlan(relay=True, limits=LimitsConfig(control_per_origin_per_s=1))
    for i in range(10):
        mv.on_control(f"p{i % 3 + 1}", _packet(), {})
    assert mv.counters.events["control_rx"] == 3
    assert mv.counters.drops["control_rate_origin"] == 7


def test_a_relay_floods_control_only_for_vlans_its_acl_forwards() -> None:
    mv = _mvlan(relay=True, acl=Acl(mode="restricted", members=[VLAN]))
    mine: dict[str, list[bytes]] = {}
    mv.on_control("p1", _packet(), mine)
    foreign: dict[str, list[bytes]] = {}
    mv.on_control("p1", _packet(vlan_id=b"\x77" * 16), foreign)
    assert sorted(mine) == ["p2", "p3"] and foreign == {}


@pytest.mark.parametrize(("relay", "hop_limit"), [(False, 5), (True, 1)])
def test_non_relays_and_spent_hop_limits_do_not_flood(relay: bool, hop_limit: int) -> None:
    mv = _mvlan(relay=relay)
    floods: dict[str, list[bytes]] = {}
    mv.on_control("p1", _packet(hop_limit=hop_limit), floods)
    assert floods == {}
    assert mv.counters.events["control_rx"] == 1


def test_badly_signed_control_packet_is_dropped_and_not_flooded() -> None:
    mv = _mvlan(relay=True)
    msg = wire.decode_control(_packet())
    forged = dataclasses.replace(msg, signer=identity.generate().public_bytes).encode()
    floods: dict[str, list[bytes]] = {}
    mv.on_control("p1", forged, floods)
    assert floods == {}
    assert mv.counters.drops["control_signature"] == 1


def test_emit_signs_with_the_node_key_and_sends_to_every_peer() -> None:
    sent: list[tuple[str, list[bytes]]] = []
    mv = _mvlan(relay=False, sent=sent)
    assert trio.run(mv.emit, VLAN, [(m.HELLO, b"body"), (m.COMMIT, b"second")])
    assert [p for p, _ in sent] == ["p1", "p2", "p3"]
    # Every peer gets the messages as one batch, in order.
    msgs = [wire.decode_control(packet) for packet in sent[0][1]]
    assert [x.kind for x in msgs] == [m.HELLO, m.COMMIT]
    assert all(x.signer == NODE.public_bytes and envelope.verify(x) for x in msgs)


def test_emit_refuses_a_body_that_cannot_fit_one_packet_and_sends_nothing() -> None:
    sent: list[tuple[str, list[bytes]]] = []
    mv = _mvlan(relay=False, sent=sent)
    big = [(m.HELLO, b"fits"), (m.WELCOME, bytes(wire.MAX_PACKET))]
    assert not trio.run(mv.emit, VLAN, big)
    assert sent == []
    assert mv.counters.drops["control_too_large"] == 1


def test_emit_says_when_no_peer_took_the_messages() -> None:
    mv = mvlan(relay=False, peers=["p1"], send=lambda peer, packets: False, node=NODE)
    assert not trio.run(mv.emit, VLAN, [(m.HELLO, b"body")])


def _group_hello(signer: identity.Identity, tag: bytes) -> bytes:
    hello = m.Hello(tag, 3, b"\x05" * 16, 7, b"{}")
    return envelope.sign(
        signer, hop_limit=5, timestamp=stamps.now_us(), vlan_id=VLAN, kind=m.HELLO,
        body=hello.encode(),
    ).encode()  # fmt: skip


def test_a_relay_answers_a_joiners_hello_with_the_group_hellos_it_flooded() -> None:
    mv = _mvlan(relay=True)
    member = identity.generate()
    group_hello = _group_hello(member, b"\x01" * 16)
    mv.on_control("p1", group_hello, {})
    floods: dict[str, list[bytes]] = {}
    mv.on_control("p2", _packet(), floods)  # a joiner's HELLO (no group)
    # The joiner's neighbour gets the member's own signed HELLO back, unchanged.
    assert floods["p2"] == [group_hello]
    assert mv.counters.events["mvlan_hello_answers"] == 1
    # A second question right away (another joiner behind p2) is not answered again.
    again: dict[str, list[bytes]] = {}
    mv.on_control("p2", _packet(signer=identity.generate()), again)
    assert group_hello not in again.get("p2", [])


def test_a_non_relay_does_not_answer_from_a_cache() -> None:
    mv = _mvlan(relay=False)
    mv.on_control("p1", _group_hello(identity.generate(), b"\x01" * 16), {})
    floods: dict[str, list[bytes]] = {}
    mv.on_control("p2", _packet(), floods)
    assert floods == {}


def test_a_trunk_coming_up_makes_private_vlans_say_hello_at_once(tmp_path: Path) -> None:
    _credential(tmp_path)
    peers = ["p1"]
    sent: list[tuple[str, list[bytes]]] = []
    mv = mvlan(
        relay=False,
        peers=peers,
        send=lambda peer, packets: sent.append((peer, packets)) is None,
        node=NODE,
    )
    mv.add_vlan(_vlan("lab.cred"), vlan_id=VLAN, base_dir=tmp_path, on_epoch=lambda: None)

    def hellos_to(peer: str) -> int:
        return sum(
            1
            for p, packets in sent
            for packet in packets
            if p == peer and wire.decode_control(packet).kind == m.HELLO
        )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            mv.start(nursery)
            await trio.sleep(0.5)
            assert hellos_to("p1") == 1  # the first HELLO, then one per interval
            peers.append("p2")
            await trio.sleep(0.5)  # far less than a HELLO interval (10 s)
            assert hellos_to("p2") == 1 and hellos_to("p1") == 2
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_relay_passes_recent_group_hellos_over_a_trunk_that_comes_up() -> None:
    peers = ["p1"]
    sent: list[tuple[str, list[bytes]]] = []
    mv = mvlan(
        relay=True,
        peers=peers,
        send=lambda peer, packets: sent.append((peer, packets)) is None,
        node=NODE,
    )
    group_hello = _group_hello(identity.generate(), b"\x01" * 16)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            mv.start(nursery)
            mv.on_control("p1", group_hello, {})
            peers.append("p2")  # e.g. the trunk to the other side of a partition
            await trio.sleep(0.5)
            assert ("p2", [group_hello]) in sent
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
