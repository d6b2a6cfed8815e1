"""Relay ACL: which VLAN-IDs a node forwards for others.

open: every VLAN. restricted: only VLANs the node is a member of. list: VLAN-IDs
(32 lower-case hex) matching an allow pattern and no deny pattern; patterns use
`*` and `?` wildcards and match the whole VLAN-ID (a bare prefix needs a `*`).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Literal

Mode = Literal["open", "restricted", "list"]


class Acl:
    def __init__(
        self,
        *,
        mode: Mode,
        members: Iterable[bytes] = (),
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
    ) -> None:
        self.mode = mode
        self.members = frozenset(members)
        self.allow = tuple(allow)
        self.deny = tuple(deny)
        self._cache: dict[bytes, bool] = {}

    def allows(self, vlan_id: bytes) -> bool:
        ok = self._cache.get(vlan_id)
        if ok is None:
            ok = self._decide(vlan_id)
            if len(self._cache) > 65536:
                self._cache.clear()
            self._cache[vlan_id] = ok
        return ok

    def _decide(self, vlan_id: bytes) -> bool:
        if self.mode == "open":
            return True
        if self.mode == "restricted":
            return vlan_id in self.members
        text = vlan_id.hex()
        if any(fnmatchcase(text, p) for p in self.deny):
            return False
        return any(fnmatchcase(text, p) for p in self.allow)
