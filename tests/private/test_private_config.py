"""Config of private VLANs: security "mls" needs a credential; its timers have defaults."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from peertap.sidecar.config import NodeConfig

CREATOR = "ab" * 32


def _node(**vlan: Any) -> dict[str, Any]:
    return {"vlans": [{"label": "lab", "creator": CREATOR, **vlan}]}


def test_mls_vlan_with_credential_is_accepted_with_default_timers() -> None:
    cfg = NodeConfig.model_validate(_node(security="mls", credential="lab.cred"))
    v = cfg.vlans[0]
    assert (v.rekey_interval_s, v.member_timeout_s, v.epoch_grace_s) == (3600.0, 30.0, 10.0)


def test_mls_vlan_without_credential_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs `credential`"):
        NodeConfig.model_validate(_node(security="mls"))


def test_credential_on_an_open_vlan_is_refused() -> None:
    with pytest.raises(ValidationError, match="only with security 'mls'"):
        NodeConfig.model_validate(_node(credential="lab.cred"))


@pytest.mark.parametrize(
    "bad", [{"rekey_interval_s": 0}, {"member_timeout_s": 0.5}, {"epoch_grace_s": -1}]
)
def test_out_of_range_timers_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        NodeConfig.model_validate(_node(security="mls", credential="c", **bad))
