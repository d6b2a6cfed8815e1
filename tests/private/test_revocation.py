"""Revocation lists: signing, verification, and refusal of anything not signed for the VLAN."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peertap.sidecar import identity
from peertap.sidecar.counters import Counters
from peertap.sidecar.private import revocation as rv

AUTH = identity.generate()
OTHER = identity.generate()
K1, K2, K3 = (bytes([i]) * 32 for i in (1, 2, 3))


def test_round_trip_binary_and_text() -> None:
    data = rv.sign_revocation_list(AUTH, "lab", [K2, K1, K2], 3)
    for form in (data, rv.to_text(data).encode()):
        lst = rv.load_revocation_list(form, AUTH.public_bytes, "lab")
        assert lst.version == 3
        assert lst.label == "lab"
        assert lst.revoked == frozenset({K1, K2})
        assert lst.data == data


def test_empty_list_is_valid() -> None:
    lst = rv.load_revocation_list(
        rv.sign_revocation_list(AUTH, "lab", [], 1), AUTH.public_bytes, "lab"
    )
    assert lst.revoked == frozenset()


def test_other_authority_label_or_signature_is_refused() -> None:
    data = rv.sign_revocation_list(AUTH, "lab", [K1], 1)
    with pytest.raises(rv.RevocationError, match="authority"):
        rv.load_revocation_list(data, OTHER.public_bytes, "lab")
    with pytest.raises(rv.RevocationError, match="for VLAN"):
        rv.load_revocation_list(data, AUTH.public_bytes, "other")
    # A holder of the list cannot remove a key from it (or change anything) unnoticed.
    forged = bytearray(data)
    forged[61] ^= 1
    with pytest.raises(rv.RevocationError):
        rv.load_revocation_list(bytes(forged), AUTH.public_bytes, "lab")
    # Nor can another key sign a list claiming the authority's name.
    stolen = rv.sign_revocation_list(OTHER, "lab", [K1], 9)
    swapped = data[:1] + stolen[1:33] + data[33:]
    with pytest.raises(rv.RevocationError):
        rv.load_revocation_list(swapped, AUTH.public_bytes, "lab")


def test_bad_inputs_to_sign() -> None:
    with pytest.raises(rv.RevocationError):
        rv.sign_revocation_list(AUTH, "lab", [b"short"], 1)
    with pytest.raises(rv.RevocationError):
        rv.sign_revocation_list(AUTH, "lab", [K1], 0)
    with pytest.raises(rv.RevocationError):
        rv.sign_revocation_list(AUTH, "lab", (i.to_bytes(32, "big") for i in range(1025)), 1)


def test_unsorted_or_truncated_lists_are_malformed() -> None:
    data = rv.sign_revocation_list(AUTH, "lab", [K1, K2], 1)
    with pytest.raises(rv.RevocationError, match="length"):
        rv.load_revocation_list(data[:-1], AUTH.public_bytes, "lab")
    swapped = data[:61] + K2 + K1 + data[125:]
    with pytest.raises(rv.RevocationError, match="ascending"):
        rv.load_revocation_list(swapped, AUTH.public_bytes, "lab")
    with pytest.raises(rv.RevocationError, match="LIST block"):
        rv.load_revocation_list(
            b"-----BEGIN PEERTAP REVOCATION LIST-----\n", AUTH.public_bytes, "lab"
        )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_list_or_a_revocation_error(data: bytes) -> None:
    with contextlib.suppress(rv.RevocationError):
        rv.load_revocation_list(data, AUTH.public_bytes, "lab")


def _book(tmp_path: Path | None = None) -> tuple[rv.RevocationBook, Counters]:
    counters = Counters()
    source = (
        None
        if tmp_path is None
        else rv.RevocationFile(tmp_path / "lab.revoked", authority=AUTH.public_bytes, label="lab")
    )
    book = rv.RevocationBook(
        authority=AUTH.public_bytes, label="lab", counters=counters, resend_s=10.0, source=source
    )
    return book, counters


def test_book_takes_only_newer_lists_and_sends_each_on_once_then_periodically() -> None:
    book, counters = _book()
    assert book.outgoing(0.0) is None
    v2 = rv.sign_revocation_list(AUTH, "lab", [K1, K2], 2)
    assert book.offer(v2)
    assert book.is_revoked(K1) and book.is_revoked(K2) and not book.is_revoked(K3)
    assert book.outgoing(0.0) == v2
    assert book.outgoing(1.0) is None
    assert book.outgoing(13.0) == v2
    # An older or equal version never replaces the list: revocations are not undone by
    # replaying an old list.
    assert not book.offer(rv.sign_revocation_list(AUTH, "lab", [K3], 1))
    assert not book.offer(rv.sign_revocation_list(AUTH, "lab", [], 2))
    assert book.revoked == frozenset({K1, K2})
    assert counters.events["revocation_lists_adopted"] == 1


def test_a_forged_list_is_counted_and_changes_nothing() -> None:
    book, counters = _book()
    assert book.offer(rv.sign_revocation_list(AUTH, "lab", [K1], 1))
    # A member (or anyone) signs a higher version that un-revokes K1 and revokes K2.
    assert not book.offer(rv.sign_revocation_list(OTHER, "lab", [K2], 5))
    assert not book.offer(b"\x01" + bytes(200))
    assert book.revoked == frozenset({K1})
    assert counters.drops["revocation_invalid"] == 2


def test_file_missing_means_none_bad_keeps_last_good_and_changes_are_read(
    tmp_path: Path,
) -> None:
    book, _ = _book(tmp_path)
    path = tmp_path / "lab.revoked"
    assert not book.poll(0.0)
    assert book.revoked == frozenset()
    path.write_text(rv.to_text(rv.sign_revocation_list(AUTH, "lab", [K1], 1)))
    assert not book.poll(0.5), "read at most once a second"
    assert book.poll(1.0)
    assert book.revoked == frozenset({K1})
    path.write_text("garbage\n")
    assert not book.poll(2.0)
    assert book.revoked == frozenset({K1})
    path.write_text(rv.to_text(rv.sign_revocation_list(AUTH, "other", [K2], 7)))
    assert not book.poll(3.0)
    path.unlink()
    assert not book.poll(4.0)
    assert book.revoked == frozenset({K1})
    path.write_text(rv.to_text(rv.sign_revocation_list(AUTH, "lab", [K1, K2], 2)))
    assert book.poll(5.0)
    assert book.revoked == frozenset({K1, K2})


def _peertap(*args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "peertap.sidecar", *args], cwd=cwd, capture_output=True, text=True
    )
    assert r.returncode == code, r.stderr
    return r


def test_cli_revoke_writes_a_list_and_running_it_again_adds_to_it(tmp_path: Path) -> None:
    creator = _peertap("authority", "keygen", "--out", "a.key", cwd=tmp_path).stdout.split()[-1]
    revoke = ("authority", "revoke", "--key", "a.key", "--label", "lab", "--out", "r.list")
    out = _peertap(*revoke, "--member-key", K1.hex(), cwd=tmp_path).stdout
    assert "version: 1" in out
    out = _peertap(*revoke, "--member-key", K2.hex(), "--member-key", K3.hex(), cwd=tmp_path)
    assert "version: 2" in out.stdout and "revoked: 3" in out.stdout
    lst = rv.load_revocation_list((tmp_path / "r.list").read_bytes(), bytes.fromhex(creator), "lab")
    assert (lst.version, lst.revoked) == (2, frozenset({K1, K2, K3}))
    r = _peertap(*revoke, "--member-key", "abcd", cwd=tmp_path, code=2)
    assert "32-byte" in r.stderr
    (tmp_path / "r.list").write_text("not a list")
    r = _peertap(*revoke, "--member-key", K1.hex(), cwd=tmp_path, code=1)
    assert "revocation list r.list" in r.stderr


def test_revocations_field_only_for_private_vlans() -> None:
    from pydantic import ValidationError

    from peertap.sidecar.config import VlanConfig

    creator = AUTH.public_hex
    ok = VlanConfig(label="lab", creator=creator, security="mls", credential="c", revocations="r")
    assert ok.revocations == "r"
    with pytest.raises(ValidationError, match="revocations"):
        VlanConfig(label="lab", creator=creator, revocations="r")
