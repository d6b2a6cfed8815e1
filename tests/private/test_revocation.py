"""Revocation lists: signing, verification, and refusal of anything not signed for the VLAN."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peertap.sidecar import identity
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
