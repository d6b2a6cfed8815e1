"""Validation of CryptoVLAN and MVLAN specs beyond the CRD schema, shared by webhook and reconcile.

Each check returns problems as (reason, message) pairs; an empty list means valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from . import ipam, models, render

Problem = tuple[str, str]

LABEL_ANNOTATION = "peertap.io/label"
AUTHORITY_ANNOTATION = "peertap.io/authority"


def explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = "spec." + ".".join(str(x) for x in e["loc"]) if e["loc"] else "spec"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def parse_cryptovlan(
    raw: Mapping[str, Any] | None,
) -> tuple[models.CryptoVLANSpec | None, list[Problem]]:
    try:
        spec = models.CryptoVLANSpec.model_validate(dict(raw or {}))
    except ValidationError as err:
        return None, [("InvalidSpec", explain(err))]
    return spec, []


def check_cryptovlan(
    *, name: str, raw: Mapping[str, Any] | None, recorded_label: str | None
) -> tuple[models.CryptoVLANSpec | None, list[Problem]]:
    spec, problems = parse_cryptovlan(raw)
    if spec is None:
        return None, problems
    if spec.interface.ipam.subnet is not None:
        try:
            ipam.parse_subnet(spec.interface.ipam.subnet)
        except ipam.IpamError as err:
            problems.append(("InvalidSubnet", str(err)))
    label = render.effective_label(name, spec)
    if recorded_label is not None and recorded_label != label:
        problems.append(
            (
                "LabelImmutable",
                f"the label changed from {recorded_label!r} to {label!r}, but the label is "
                "immutable (it is part of the VLAN-ID). Restore it, or create a new CryptoVLAN.",
            )
        )
    try:
        render.duration_seconds(spec.rekey_interval)
    except ValueError as err:
        problems.append(("InvalidRekeyInterval", f"spec.rekeyInterval: {err}"))
    if spec.relay_policy.acl.mode == "list" and not spec.relay_policy.acl.allow:
        problems.append(
            ("InvalidRelayPolicy", "spec.relayPolicy.acl.mode 'list' needs at least one allow")
        )
    if spec.revoked_members and spec.security != "mls":
        problems.append(
            (
                "InvalidRevocation",
                "spec.revokedMembers needs security 'mls': public VLANs have no members to "
                "revoke (their key derives from the label and authority)",
            )
        )
    return spec, problems


def check_mvlan(
    raw: Mapping[str, Any] | None,
) -> tuple[models.MVLANSpec | None, list[Problem]]:
    try:
        spec = models.MVLANSpec.model_validate(dict(raw or {}))
    except ValidationError as err:
        return None, [("InvalidSpec", explain(err))]
    problems: list[Problem] = []
    if spec.presence_interval is not None:
        try:
            seconds = render.duration_seconds(spec.presence_interval)
        except ValueError as err:
            problems.append(("InvalidPresenceInterval", f"spec.presenceInterval: {err}"))
        else:
            if seconds < 1:
                problems.append(
                    ("InvalidPresenceInterval", "spec.presenceInterval must be at least 1s")
                )
    if spec.relays.acl.mode == "list" and not spec.relays.acl.allow:
        problems.append(("InvalidRelayPolicy", "spec.relays.acl.mode 'list' needs an allow entry"))
    return spec, problems
