"""Revocation lists: `load_revocation_list` and `RevocationBook.offer` on arbitrary bytes.

Seeds are lists the VLAN's authority signs (empty, one key, many keys), their armoured
text, and a list of another authority. Asserts that loading returns a list or raises
RevocationError, that a list it returns is the authority's, for this VLAN, with keys
strictly ascending and a re-signing of the same content gives the same bytes, and that
a book never takes a list of a lower version than the one it holds.
"""

from __future__ import annotations

from peertap.sidecar.counters import Counters
from peertap.sidecar.private import revocation

from . import world

NAME = "revocation_lists"
LABEL = "fuzz"


def seeds() -> list[bytes]:
    keys = [world.node(i).public_bytes for i in range(1, 6)]
    one = revocation.sign_revocation_list(world.AUTHORITY, LABEL, keys[:1], 1)
    return [
        revocation.sign_revocation_list(world.AUTHORITY, LABEL, [], 1),
        one,
        revocation.sign_revocation_list(world.AUTHORITY, LABEL, keys, 7),
        revocation.to_text(one).encode(),
        revocation.sign_revocation_list(world.node(9), LABEL, keys[:2], 2),
    ]


def check(data: bytes) -> None:
    book = revocation.RevocationBook(
        authority=world.AUTHORITY.public_bytes, label=LABEL, counters=Counters(), resend_s=1.0
    )
    book.adopt(
        revocation.load_revocation_list(
            revocation.sign_revocation_list(world.AUTHORITY, LABEL, [], 5),
            world.AUTHORITY.public_bytes,
            LABEL,
        )
    )
    try:
        lst = revocation.load_revocation_list(data, world.AUTHORITY.public_bytes, LABEL)
    except revocation.RevocationError:
        assert not book.offer(data)
        return
    assert lst.authority == world.AUTHORITY.public_bytes
    assert lst.vlan_id == world.VLAN_ID
    again = revocation.sign_revocation_list(world.AUTHORITY, LABEL, lst.revoked, lst.version)
    assert again == lst.data, "the same content signs to the same bytes"
    assert book.offer(data) == (lst.version > 5)
    assert book.current is not None and book.current.version >= 5
