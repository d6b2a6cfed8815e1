"""Member credentials: signed by the VLAN authority, bound to member key, VLAN and time."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peertap.sidecar import admission, identity, ids
from peertap.sidecar.private import authority

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
AUTH = identity.Identity(Ed25519PrivateKey.from_private_bytes(b"\x01" * 32))
OTHER = identity.Identity(Ed25519PrivateKey.from_private_bytes(b"\x02" * 32))
MEMBER = identity.Identity(Ed25519PrivateKey.from_private_bytes(b"\x03" * 32))
VLAN = ids.vlan_id(AUTH.public_bytes, "lab")


def _issue(signer: identity.Identity = AUTH, days: int = 30) -> bytes:
    return authority.issue(
        authority=signer,
        member_identity="ns/p",
        member_key=MEMBER.public_bytes,
        vlan_id=VLAN,
        issued=NOW,
        expires=NOW + dt.timedelta(days=days),
    ).encode()


def _verify(data: bytes | str, **change: object) -> authority.MemberCredential:
    args: dict[str, object] = {
        "authority": AUTH.public_bytes,
        "vlan_id": VLAN,
        "now": NOW + dt.timedelta(hours=1),
        "member_key": MEMBER.public_bytes,
    }
    args.update(change)
    return authority.verify(data, **args)  # type: ignore[arg-type]


def test_issued_credential_verifies_and_carries_the_binding() -> None:
    cred = _verify(_issue())
    assert (cred.identity, cred.member_key, cred.vlan_id) == ("ns/p", MEMBER.public_bytes, VLAN)
    assert cred.expires == NOW + dt.timedelta(days=30)


def test_expired_credential_is_rejected() -> None:
    with pytest.raises(authority.CredentialExpired):
        _verify(_issue(days=1), now=NOW + dt.timedelta(days=1))


def test_credential_used_before_its_issue_time_is_rejected() -> None:
    with pytest.raises(authority.CredentialNotYetValid):
        _verify(_issue(), now=NOW - dt.timedelta(seconds=1))


def test_credential_from_another_authority_is_rejected() -> None:
    with pytest.raises(authority.WrongAuthority):
        _verify(_issue(signer=OTHER))


def test_credential_for_another_vlan_is_rejected() -> None:
    with pytest.raises(authority.WrongVlan):
        _verify(_issue(), vlan_id=ids.vlan_id(AUTH.public_bytes, "other"))


def test_credential_for_another_member_key_is_rejected() -> None:
    with pytest.raises(authority.WrongMemberKey):
        _verify(_issue(), member_key=OTHER.public_bytes)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("identity", "ns/q"),
        ("member_key", "00" * 32),
        ("expires", "2030-01-01T00:00:00Z"),
        ("issued", "2025-01-01T00:00:00Z"),
    ],
)
def test_tampered_payload_fails_the_signature(field: str, value: str) -> None:
    doc = json.loads(_issue())
    doc["payload"][field] = value
    with pytest.raises(authority.BadSignature):
        _verify(json.dumps(doc), member_key=None)


def test_tampered_authority_field_names_the_wrong_authority() -> None:
    doc = json.loads(_issue())
    doc["authority"] = OTHER.public_hex
    with pytest.raises(authority.WrongAuthority):
        _verify(json.dumps(doc))


@pytest.mark.parametrize(
    "text",
    ["", "{}", "[]", '{"payload": {}, "authority": "00", "signature": "zz"}', "x" * 5000],
)
def test_malformed_credentials_are_rejected_as_malformed(text: str) -> None:
    with pytest.raises(authority.MalformedCredential):
        _verify(text)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("24h", 86400), ("30d", 2592000)]
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert authority.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "0h", "5", "5w", "-1d", "1.5h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        authority.parse_duration(text)


def _peertap(*args: str, cwd: Path) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "peertap.sidecar", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return r.stdout


def test_cli_keygen_and_issue_write_a_credential_that_verifies(tmp_path: Path) -> None:
    creator = _peertap("authority", "keygen", "--out", "a.key", cwd=tmp_path).split()[-1]
    node = _peertap("keygen", "--out", "n.key", cwd=tmp_path).split()[-1]
    _peertap(
        "authority", "issue", "--key", "a.key", "--identity", "ns/p", "--member-key", node,
        "--label", "lab", "--expires", "24h", "--out", "m.cred", cwd=tmp_path,
    )  # fmt: skip
    cred = authority.verify(
        (tmp_path / "m.cred").read_bytes().strip(),
        authority=bytes.fromhex(creator),
        vlan_id=ids.vlan_id(bytes.fromhex(creator), "lab"),
        now=dt.datetime.now(dt.UTC),
        member_key=bytes.fromhex(node),
    )
    assert cred.expires - cred.issued == dt.timedelta(hours=24)


def test_cli_issue_node_writes_a_node_credential_peers_admit(tmp_path: Path) -> None:
    creator = _peertap("authority", "keygen", "--out", "a.key", cwd=tmp_path).split()[-1]
    out = _peertap("keygen", "--out", "n.key", cwd=tmp_path).split()
    peer_id, node = out[1], out[-1]
    printed = _peertap(
        "authority", "issue-node", "--key", "a.key", "--identity", "site/relay-1",
        "--node-key", node, "--expires", "2h", "--out", "n.cred", cwd=tmp_path,
    )  # fmt: skip
    assert f"peer-id: {peer_id}" in printed
    cred = admission.read_file(tmp_path / "n.cred")
    admission.verify(
        cred, authorities=frozenset({bytes.fromhex(creator)}), now=dt.datetime.now().timestamp()
    )
    assert (cred.node_key.hex(), cred.identity, cred.not_after - cred.not_before) == (
        node,
        "site/relay-1",
        7200,
    )


def test_cli_issue_node_refuses_a_bad_node_key(tmp_path: Path) -> None:
    _peertap("authority", "keygen", "--out", "a.key", cwd=tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "peertap.sidecar", "authority", "issue-node", "--key", "a.key",
         "--identity", "x", "--node-key", "abcd", "--out", "n.cred"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "not 32 bytes" in r.stderr
    assert not (tmp_path / "n.cred").exists()


def test_credential_with_a_year_before_1000_survives_encode_and_parse() -> None:
    # Found by fuzzing: the year was written without its leading zeros ("99-12-02..."),
    # so the credential's own encoding did not parse and its signature did not verify.
    early = dt.datetime(99, 12, 2, tzinfo=dt.UTC)
    cred = authority.issue(
        authority=AUTH,
        member_identity="ns/p",
        member_key=MEMBER.public_bytes,
        vlan_id=VLAN,
        issued=early,
        expires=NOW,
    )
    assert authority.parse(cred.encode()) == cred
    assert _verify(cred.encode(), now=early).issued == early


@pytest.mark.parametrize("text", ["[" * 4000, '{"a":[' * 680])
def test_deeply_nested_json_is_malformed_not_a_recursion_error(text: str) -> None:
    with pytest.raises(authority.MalformedCredential):
        authority.parse(text)


def test_issuing_a_credential_too_long_to_parse_is_refused() -> None:
    # Found by fuzzing: an identity of 1500 "é" parses from 3467 bytes of UTF-8, but
    # the credential's own encoding escapes each as \u00e9 and is over the limit.
    with pytest.raises(ValueError, match="bytes is over"):
        authority.issue(
            authority=AUTH,
            member_identity="\u00e9" * 1500,
            member_key=MEMBER.public_bytes,
            vlan_id=VLAN,
            issued=NOW,
            expires=NOW + dt.timedelta(days=1),
        )


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.update(version=True),
        lambda p: p.update(version=1.0),
        lambda p: p.update(member_key=p["member_key"] + "\n"),
    ],
)
def test_payloads_that_only_look_canonical_are_malformed(change) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(_issue())
    change(doc["payload"])
    with pytest.raises(authority.MalformedCredential):
        authority.parse(json.dumps(doc))


def test_cli_issue_refuses_an_identity_too_long_for_a_credential(tmp_path: Path) -> None:
    _peertap("authority", "keygen", "--out", "a.key", cwd=tmp_path)
    node = _peertap("keygen", "--out", "n.key", cwd=tmp_path).split()[-1]
    r = subprocess.run(
        [sys.executable, "-m", "peertap.sidecar", "authority", "issue", "--key", "a.key",
         "--identity", "é" * 1500, "--member-key", node, "--label", "lab", "--out", "m.cred"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "bad --identity" in r.stderr and "Traceback" not in r.stderr
