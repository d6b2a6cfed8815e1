"""Trunk admission: node credentials and the policy deciding on a peer's INTRO.

Every refusal is an attacker trying: a stranger, a forged or foreign credential, a
credential stolen from another node, an expired one."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from peertap.sidecar import admission, identity, wire
from peertap.sidecar.admission.credential import from_text
from peertap.sidecar.admission.files import CredentialFileError, OwnCredentials
from peertap.sidecar.admission.gate import AdmissionGate
from peertap.sidecar.counters import Counters
from peertap.sidecar.private import authority

AUTH = identity.generate()
OTHER_AUTH = identity.generate()
NODE = identity.generate()
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def cred(node: identity.Identity = NODE, auth: identity.Identity = AUTH, **kw: object):
    args: dict[str, object] = dict(
        authority=auth,
        node_key=node.public_bytes,
        identity="cluster/ns/pod-0",
        not_before=NOW,
        not_after=NOW + dt.timedelta(hours=1),
    )
    args.update(kw)
    return admission.issue(**args)  # type: ignore[arg-type]


def policy(mode: str = "credential", **kw: object) -> admission.Admission:
    args: dict[str, object] = dict(
        mode=mode, authorities=[AUTH.public_bytes], wall=lambda: NOW.timestamp() + 60
    )
    args.update(kw)
    return admission.Admission(**args)  # type: ignore[arg-type]


def intro(*creds: admission.NodeCredential) -> wire.Intro:
    return wire.Intro(credentials=tuple(c.encode() for c in creds))


def test_a_credential_round_trips_through_its_file_form() -> None:
    c = cred()
    assert from_text(admission.to_text(c)) == c
    assert admission.decode(c.encode()) == c
    assert c.peer_id == NODE.peer_id


def test_a_valid_credential_admits_its_node_until_it_expires() -> None:
    verdict = policy().decide(NODE.peer_id, intro(cred()))
    assert verdict.admitted and verdict.identity == "cluster/ns/pod-0"
    assert verdict.until == (NOW + dt.timedelta(hours=1)).timestamp() + 60


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: intro(), "no_credential"),
        (lambda: intro(cred(auth=OTHER_AUTH)), "wrong_authority"),
        # Stolen: another node's valid credential, presented by this peer.
        (lambda: intro(cred(node=identity.generate())), "wrong_member_key"),
        (
            lambda: intro(
                cred(not_after=NOW - dt.timedelta(hours=1), not_before=NOW - dt.timedelta(hours=2))
            ),
            "expired",
        ),
        (
            lambda: intro(
                cred(not_before=NOW + dt.timedelta(hours=2), not_after=NOW + dt.timedelta(hours=3))
            ),
            "not_yet_valid",
        ),
        (
            lambda: intro(dataclasses.replace(cred(), identity="cluster/ns/admin")),
            "bad_signature",
        ),
        (lambda: wire.Intro(credentials=(b"\x01garbage",)), "malformed"),
    ],
)
def test_refusals_name_their_reason(make, reason: str) -> None:  # type: ignore[no-untyped-def]
    verdict = policy().decide(NODE.peer_id, make())
    assert not verdict.admitted and verdict.reason == reason


def test_one_good_credential_among_bad_ones_admits() -> None:
    verdict = policy().decide(NODE.peer_id, intro(cred(auth=OTHER_AUTH), cred()))
    assert verdict.admitted


def test_peers_mode_admits_the_listed_and_bootstrap_peers_only() -> None:
    listed, pinned, stranger = (identity.generate().peer_id for _ in range(3))
    p = policy("peers", peers=[listed], pinned=[pinned])
    assert p.decide(listed, wire.Intro()).admitted
    assert p.decide(pinned, wire.Intro()).admitted
    refused = p.decide(stranger, intro(cred()))
    assert not refused.admitted and refused.reason == "not_listed"


def test_a_bootstrap_list_pins_the_peer_ids_its_addresses_end_in() -> None:
    a, b, stranger = (identity.generate().peer_id for _ in range(3))
    bootstrap = [f"/ip4/10.0.0.1/tcp/4001/p2p/{a}", f"/dns4/relay.example/tcp/443/ws/p2p/{b}"]
    assert admission.policy.pinned_peer_ids(bootstrap) == {a, b}
    p = policy("credential", pinned=admission.policy.pinned_peer_ids(bootstrap))
    assert p.decide(b, wire.Intro()).admitted
    assert not p.decide(stranger, wire.Intro()).admitted


def test_open_mode_admits_anyone() -> None:
    assert policy("open").decide(identity.generate().peer_id, wire.Intro()).admitted


def test_truncated_or_padded_credentials_are_malformed() -> None:
    data = cred().encode()
    for bad in (data[:-1], data + b"\x00", b"\x02" + data[1:]):
        with pytest.raises(authority.MalformedCredential):
            admission.decode(bad)


def test_own_credential_files_load_reload_and_keep_the_old_on_a_bad_rewrite(
    tmp_path: Path,
) -> None:
    path = tmp_path / "node.cred"
    path.write_text(admission.to_text(cred()))
    own = OwnCredentials([path])
    own.load()
    assert own.encoded == (cred().encode(),)
    assert not own.reload()
    renewed = cred(not_after=NOW + dt.timedelta(days=1))
    path.write_text(admission.to_text(renewed))
    assert own.reload() and own.encoded == (renewed.encode(),)
    path.write_text("half a credential")
    assert not own.reload() and own.encoded == (renewed.encode(),)


def test_a_missing_own_credential_stops_the_node_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialFileError, match="node credential"):
        OwnCredentials([tmp_path / "absent.cred"]).load()


# The exact INTROs version 2 and version 3 nodes send: frozen prefix 02 04 01 00,
# versions 2..2 (3..3), no roles, no credential.
VERSION_2_INTRO = bytes.fromhex("0204010002020000")
VERSION_3_INTRO = bytes.fromhex("0204010003030000")


def gate(mode: str = "open") -> tuple[AdmissionGate, Counters]:
    counters = Counters()
    g = AdmissionGate(
        policy=policy(mode), credentials=OwnCredentials([]), relay=False, counters=counters
    )
    return g, counters


@pytest.mark.parametrize("theirs", [VERSION_2_INTRO, VERSION_3_INTRO], ids=["v2", "v3"])
def test_an_older_node_and_this_one_refuse_each_other_with_a_counted_reason(
    theirs: bytes,
) -> None:
    # This node reads the older INTRO (frozen format) and refuses it for its versions,
    # not as malformed, even in open mode.
    g, counters = gate("open")
    assert not g.admit(NODE.peer_id, theirs)
    assert counters.drops["admission_refused_version"] == 1
    assert counters.drops["admission_refused"] == 1
    assert not any(k.startswith("admission_refused_malformed") for k in counters.drops)
    # What this node sends keeps the version 2 layout: an older node reads the range
    # 4..4 from it, has no version in common and refuses with the same reason.
    ours = g.intro()
    assert ours[:4] == theirs[:4]
    assert (ours[4], ours[5]) == (wire.VERSION, wire.VERSION) == (4, 4)
    assert wire.common_version(theirs[4], theirs[5]) is None
    # A fresh INTRO of an admitted peer is still recognised on a live trunk.
    assert wire.packet_type(ours) == wire.TYPE_INTRO
    assert g.admit(NODE.peer_id, ours)
