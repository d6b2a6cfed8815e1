"""Which pods belong to which CryptoVLAN: label selectors and the peertap.io/vlans label."""

from __future__ import annotations

from collections.abc import Mapping

from . import models

VLANS_LABEL = "peertap.io/vlans"
ROLE_LABEL = "peertap.io/role"


def selector_matches(selector: models.LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics; an empty selector matches every pod."""
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        present = req.key in labels
        if req.operator == "In" and not (present and labels[req.key] in req.values):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in req.values:
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True


# Label values cannot hold commas; "_" cannot occur in resource names, so it separates
# several names unambiguously (peertap.io/vlans: lab_web). Commas are accepted too, for
# tools that build the value from a list.
_SEPARATORS = str.maketrans({"_": ",", " ": ","})


def labelled_vlans(labels: Mapping[str, str]) -> set[str]:
    """CryptoVLAN names listed in the pod's peertap.io/vlans label ("_" or "," separated)."""
    raw = labels.get(VLANS_LABEL, "").translate(_SEPARATORS)
    return {part for part in raw.split(",") if part}


def is_relay(labels: Mapping[str, str]) -> bool:
    """Relay pods run peertap themselves and never become members."""
    return labels.get(ROLE_LABEL) == "relay"


def pod_joins(
    *, vlan_name: str, selector: models.LabelSelector | None, labels: Mapping[str, str]
) -> bool:
    if is_relay(labels):
        return False
    if vlan_name in labelled_vlans(labels):
        return True
    return selector is not None and selector_matches(selector, labels)
