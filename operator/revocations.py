"""CryptoVLAN `spec.revokedMembers` -> the VLAN's signed revocation list, published to members.

Entries name pods (their node key is revoked) or member keys (64 hex). The list format and
its signature are the sidecar's (`peertap.sidecar.private.revocation`); this module decides
which keys it holds and when a new version is signed:

- a pod name resolves to the node key the operator gave that pod; the resolution is kept
  in the VLAN's ConfigMap (`revocations.json`), so the key stays revoked after the pod and
  its objects are gone, for as long as the entry stays in the spec;
- the list is re-signed, with the next version, only when the set of revoked keys changes
  (a member whose entry is removed is admitted again by the next version);
- without the authority key (its Secret missing) nothing is signed: the last list stays.

Members get the list as the file `<cryptovlan>.revocations` next to their node.json; the
sidecar re-reads it when it changes and spreads it over the MVLAN.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from peertap.sidecar import identity
from peertap.sidecar.private import revocation

HEX_KEY = re.compile(r"^[0-9a-f]{64}$")
STATE_FILE = "revocations.json"
LIST_FILE = "revocations.list"


def file_name(vlan_name: str) -> str:
    """The file (ConfigMap key) holding VLAN `vlan_name`'s revocation list for a member."""
    return f"{vlan_name}.revocations"


@dataclass(frozen=True)
class Stored:
    """What the VLAN's ConfigMap remembers: the list's version, how each entry resolved to a
    member key (hex), and the signed list (armoured text; empty before the first)."""

    version: int = 0
    resolved: Mapping[str, str] = field(default_factory=dict)
    text: str = ""

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self.resolved.values())


def parse(data: Mapping[str, str] | None) -> Stored:
    """Read the VLAN ConfigMap's revocation state; anything unreadable counts as none."""
    if not data or STATE_FILE not in data:
        return Stored()
    try:
        raw = json.loads(data[STATE_FILE])
        version = int(raw["version"])
        resolved = {
            str(k): str(v) for k, v in dict(raw["resolved"]).items() if HEX_KEY.match(str(v))
        }
    except (ValueError, KeyError, TypeError):
        return Stored()
    return Stored(version=version, resolved=resolved, text=data.get(LIST_FILE, ""))


def to_data(stored: Stored) -> dict[str, str]:
    """The ConfigMap entries for `stored` (none before the first list)."""
    if not stored.version:
        return {}
    state = {"version": stored.version, "resolved": dict(sorted(stored.resolved.items()))}
    return {STATE_FILE: json.dumps(state, sort_keys=True), LIST_FILE: stored.text}


@dataclass(frozen=True)
class Decision:
    stored: Stored
    unresolved: Sequence[str]  # entries naming no pod the operator knows a key for


def decide(
    *,
    entries: Sequence[str],
    pod_keys: Mapping[str, str],
    previous: Stored,
    authority: identity.Identity | None,
    label: str,
) -> Decision:
    """The list to publish for `entries` (pod names or member keys); `pod_keys` maps the
    namespace's pods to their node public keys (hex)."""
    resolved: dict[str, str] = {}
    unresolved = []
    for entry in dict.fromkeys(entries):
        if HEX_KEY.match(entry):
            resolved[entry] = entry
        elif entry in pod_keys:
            resolved[entry] = pod_keys[entry]
        elif entry in previous.resolved:
            resolved[entry] = previous.resolved[entry]
        else:
            unresolved.append(entry)
    keys = frozenset(resolved.values())
    if keys == previous.keys:
        # Same keys: keep the signed list and its version.
        kept = Stored(previous.version, resolved, previous.text) if previous.version else Stored()
        return Decision(kept, unresolved)
    if authority is None:
        return Decision(previous, unresolved)
    version = previous.version + 1
    signed = revocation.sign_revocation_list(
        authority, label, (bytes.fromhex(k) for k in keys), version
    )
    return Decision(Stored(version, resolved, revocation.to_text(signed)), unresolved)
