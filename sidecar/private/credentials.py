"""Member credentials of one private VLAN, checked as MLS leaves and HELLOs arrive.

A credential (authority.py) counts only if the VLAN's authority signed it for this
VLAN-ID, it is valid now and it names the key that uses it (the CONTROL signer or
the leaf's signature key), and that key is not on the VLAN's revocation list
(revocation.py). Parsed and signature-checked credentials are cached by their bytes;
validity, key and revocation are checked on every use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Protocol

from ..counters import Counters
from ..mls import Group
from ..mls.structs import Credential, MLSMessage, PublicMessage
from . import authority

MAX_CACHED_CREDENTIALS = 1024


class Leaf(Protocol):
    """What a leaf shows of its member: an MLS LeafNode, or a Group's Member."""

    @property
    def credential(self) -> Credential: ...

    @property
    def signature_key(self) -> bytes: ...


class CredentialCheck:
    def __init__(
        self,
        *,
        creator: bytes,
        vlan_id: bytes,
        counters: Counters,
        wall: Callable[[], dt.datetime],
        revoked: Callable[[bytes], bool] = lambda key: False,
        cache: dict[bytes, authority.MemberCredential] | None = None,
    ) -> None:
        self.creator = creator
        self.vlan_id = vlan_id
        self.counters = counters
        self._wall = wall
        self._revoked = revoked
        # `cache` may be shared by the checks of one VLAN (same creator and VLAN-ID) only.
        self._cache: dict[bytes, authority.MemberCredential] = {} if cache is None else cache

    def check(self, data: bytes, member_key: bytes) -> authority.MemberCredential:
        """A credential valid now for `member_key` on this VLAN; CredentialError otherwise."""
        cred = self._cache.get(data)
        if cred is None:
            cred = authority.verify(
                data, authority=self.creator, vlan_id=self.vlan_id, now=self._wall()
            )
            if len(self._cache) >= MAX_CACHED_CREDENTIALS:
                self._cache.clear()
            self._cache[data] = cred
        return self.valid(cred, member_key)

    def valid(
        self, cred: authority.MemberCredential, member_key: bytes
    ) -> authority.MemberCredential:
        """`cred` (verified before) if valid now for `member_key`; CredentialError otherwise."""
        now = self._wall()
        if not cred.issued <= now < cred.expires:
            raise authority.CredentialExpired(f"credential of {cred.identity} is not valid now")
        if cred.member_key != member_key:
            raise authority.WrongMemberKey(f"credential of {cred.identity} is for another key")
        if self._revoked(member_key):
            raise authority.MemberRevoked(f"the key of {cred.identity} is revoked")
        return cred

    def leaf_ok(self, credential: Credential, signature_key: bytes) -> bool:
        """Whether an MLS leaf's credential is valid; a refusal is counted by its reason."""
        try:
            self.check(credential.identity, signature_key)
        except authority.CredentialError as err:
            self.counters.drop(f"mvlan_rejected_{err.reason}")
            return False
        return True

    def leaves_ok(self, leaves: Iterable[Leaf]) -> bool:
        """Whether every leaf's credential is valid (stops at the first refusal)."""
        return all(self.leaf_ok(x.credential, x.signature_key) for x in leaves)

    def revoked_sender(self, group: Group, message: MLSMessage) -> bool:
        """Whether a PublicMessage (a Commit) comes from a member whose key is revoked;
        counted. Its leaf stays in the group only until the committer's next commit."""
        body = message.body
        if not isinstance(body, PublicMessage):
            return False
        index = body.content.sender.index
        key = next((x.signature_key for x in group.members() if x.index == index), None)
        if key is not None and self._revoked(key):
            self.counters.drop("mvlan_rejected_revoked")
            return True
        return False
