"""MAC claims of private VLAN members (mvlan_macprobe.py): answers, re-rolls, messages."""

from __future__ import annotations

import pytest

from peertap.sidecar import identity, ids
from peertap.sidecar.counters import Counters
from peertap.sidecar.private.macprobe import PROBE, RESPONSE, MacClaim, MacMessage, MacProber
from peertap.sidecar.private.messages import MalformedControl

VLAN = bytes(range(16))
NODE = identity.generate()
MAC = ids.member_mac(NODE.public_bytes, VLAN, bytes(16))
OTHER = bytes.fromhex("020000000099")


def claim(*, derived: bool = True, changes: list[bytes] | None = None) -> MacClaim:
    sink = changes if changes is not None else []
    return MacClaim(
        public=NODE.public_bytes, vlan_id=VLAN, mac=MAC, derived=derived, on_change=sink.append
    )


def test_a_probe_for_our_mac_is_answered_and_others_are_ignored() -> None:
    c = claim()
    assert c.on_message(MacMessage(PROBE, MAC)) == MacMessage(RESPONSE, MAC)
    assert c.on_message(MacMessage(PROBE, OTHER)) is None
    assert c.on_message(MacMessage(RESPONSE, OTHER)) is None
    assert c.mac == MAC and c.collisions == 0


def test_an_answer_naming_our_derived_mac_rerolls_it_with_a_fresh_nonce() -> None:
    changes: list[bytes] = []
    c = claim(changes=changes)
    assert c.on_message(MacMessage(RESPONSE, MAC)) is None
    assert c.mac != MAC and changes == [c.mac]
    assert c.mac[0] & 0x03 == 0x02  # unicast, locally administered
    assert c.collisions == 1 and c.rerolls == 1


def test_a_configured_mac_is_kept_after_a_collision() -> None:
    changes: list[bytes] = []
    c = claim(derived=False, changes=changes)
    c.on_message(MacMessage(RESPONSE, MAC))
    assert c.mac == MAC and changes == [] and c.collisions == 1


def test_the_prober_probes_every_interval_and_sends_owed_answers_first() -> None:
    counters = Counters()
    prober = MacProber(claim(), counters=counters)
    assert prober.outgoing(now=0.0, interval=10.0) == [MacMessage(PROBE, MAC).encode()]
    assert prober.outgoing(now=5.0, interval=10.0) == []
    assert prober.receive(MacMessage(PROBE, MAC).encode())
    assert prober.outgoing(now=6.0, interval=10.0) == [MacMessage(RESPONSE, MAC).encode()]
    # Losing re-rolls and probes the new MAC at once.
    assert prober.receive(MacMessage(RESPONSE, MAC).encode())
    new = prober.claim.mac
    assert prober.outgoing(now=7.0, interval=10.0) == [MacMessage(PROBE, new).encode()]
    assert counters.events["mac_rerolled"] == 1


@pytest.mark.parametrize("data", [b"", b"\x01" + bytes(5), b"\x03" + bytes(6), bytes(8)])
def test_malformed_probe_messages_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedControl):
        MacMessage.decode(data)
