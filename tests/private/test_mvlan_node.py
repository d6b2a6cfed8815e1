"""The node's management VLAN: credential files, signature checks, once-only flooding."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import trio

from peertap.sidecar import authority, identity, ids, wire
from peertap.sidecar import mvlan_envelope as envelope
from peertap.sidecar import mvlan_messages as m
from peertap.sidecar.config import VlanConfig
from peertap.sidecar.counters import Counters
from peertap.sidecar.mvlan_node import CredentialFile, CredentialFileError, Mvlan

AUTH = identity.generate()
NODE = identity.generate()
OTHER = identity.generate()
VLAN = ids.vlan_id(AUTH.public_bytes, "lab")


def _mvlan(*, relay: bool, sent: list[tuple[str, list[bytes]]] | None = None) -> Mvlan:
    async def send(peer: str, packets: list[bytes]) -> bool:
        if sent is not None:
            sent.append((peer, packets))
        return True

    return Mvlan(
        identity=NODE,
        counters=Counters(),
        hop_limit=8,
        relay=relay,
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


def _packet(hop_limit: int = 5, sequence: int = 1) -> bytes:
    hello = m.Hello(m.NO_GROUP, 0, bytes(16), 0, b"{}")
    return envelope.sign(
        OTHER, hop_limit=hop_limit, origin=b"\x09" * 16, sequence=sequence,
        vlan_id=VLAN, kind=m.HELLO, body=hello.encode(),
    ).encode()  # fmt: skip


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
    mv.on_control("p1", _packet(hop_limit=5), floods)
    assert sorted(floods) == ["p2", "p3"]
    assert wire.decode_control(floods["p2"][0]).hop_limit == 4
    again: dict[str, list[bytes]] = {}
    mv.on_control("p2", _packet(hop_limit=5), again)
    assert again == {}
    assert mv.counters.drops["control_duplicate"] == 1


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
    forged = dataclasses.replace(msg, signer=NODE.public_bytes).encode()
    floods: dict[str, list[bytes]] = {}
    mv.on_control("p1", forged, floods)
    assert floods == {}
    assert mv.counters.drops["control_signature"] == 1


def test_emit_signs_with_the_node_key_and_sends_to_every_peer() -> None:
    sent: list[tuple[str, list[bytes]]] = []
    mv = _mvlan(relay=False, sent=sent)
    trio.run(mv.emit, VLAN, m.HELLO, b"body")
    assert [p for p, _ in sent] == ["p1", "p2", "p3"]
    msg = wire.decode_control(sent[0][1][0])
    assert msg.signer == NODE.public_bytes and envelope.verify(msg)


def test_emit_refuses_a_body_that_cannot_fit_one_packet() -> None:
    mv = _mvlan(relay=False)
    with pytest.raises(ValueError, match="does not fit"):
        trio.run(mv.emit, VLAN, m.WELCOME, bytes(wire.MAX_PACKET))
    assert mv.counters.drops["control_too_large"] == 1
