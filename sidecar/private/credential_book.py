"""Small HELLOs: credentials known by a digest bound to their member's key.

Every HELLO used to carry its member's whole credential (about 450 bytes), which made
credentials most of the MVLAN's periodic traffic. A member now names its credential in
most HELLOs by a digest (docs/protocol.md, 10.2):

    credential digest = BLAKE3-128("peertap credential digest" || 00 || member key || credential)

A receiver resolves a digest only against credentials it already verified for the
HELLO's signer (from a full HELLO, a KeyPackage, or a leaf of its group's tree), so a
digest can never stand for another member's credential: the signer key is part of what
is hashed and of what is looked up, and the HELLO is signed by that key. The book holds
the last few verified credentials of each signer; it never verifies anything itself.
"""

from __future__ import annotations

from collections import OrderedDict

import blake3

from .authority import MemberCredential
from .messages import DIGEST_LEN

_CONTEXT = b"peertap credential digest\x00"
MAX_ENTRIES = 4096


def digest(member_key: bytes, credential: bytes) -> bytes:
    """The digest that names `credential` in HELLOs signed by `member_key`."""
    return blake3.blake3(_CONTEXT + member_key + credential).digest(DIGEST_LEN)


class CredentialBook:
    """Verified credentials by digest, each with the signer it was verified for. The
    least recently learned goes first when the book is full (the signer's next full
    HELLO brings it back). Members of our own group need no entry: their credentials
    are in the group's tree (PrivateVlan looks there first)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._known: OrderedDict[bytes, tuple[bytes, MemberCredential]] = OrderedDict()

    def learn(self, signer: bytes, credential: bytes, verified: MemberCredential) -> None:
        """Remember a credential verified for `signer`."""
        d = digest(signer, credential)
        self._known[d] = (signer, verified)
        self._known.move_to_end(d)
        while len(self._known) > self.max_entries:
            self._known.popitem(last=False)

    def lookup(self, signer: bytes, credential_digest: bytes) -> MemberCredential | None:
        """The credential verified for `signer` with this digest, or None if unknown (also
        when the digest is another signer's: it names that signer's credential only)."""
        entry = self._known.get(credential_digest)
        if entry is None or entry[0] != signer:
            return None
        return entry[1]

    def __len__(self) -> int:
        return len(self._known)
