"""Render sidecar configurations (`peertap.sidecar.config.NodeConfig`) for members and relays.

Private VLANs (security "mls") name the member's credential file, which the
operator keeps in the pod's credential Secret next to node.json; open VLANs
have the file too (it proves membership to tools) but do not reference it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from peertap.sidecar import config as sc

from . import models

API_LISTEN = "0.0.0.0:9464"
P2P_PORT = 4001
WS_PORT = 4002
KEY_FILE = "node.key"
CONFIG_FILE = "node.json"


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """Go-style duration ("1h30m", "90s") in seconds; ValueError when malformed or zero."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"duration {text!r} must look like 1h, 30m or 1h30m")
    total = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if total <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return total


def effective_label(name: str, spec: models.CryptoVLANSpec) -> str:
    return spec.label or name


def interface_name(label: str, spec: models.CryptoVLANSpec) -> str:
    if spec.interface.name:
        return spec.interface.name
    cleaned = "".join(ch if ch.isalnum() or ch in "_.-" else "-" for ch in label)
    return f"pt-{cleaned}"[:15]


def credential_file(vlan_name: str) -> str:
    return f"{vlan_name}.cred.json"


def listen_addrs(transports: Sequence[str]) -> list[str]:
    out = []
    if "tcp" in transports:
        out.append(f"/ip4/0.0.0.0/tcp/{P2P_PORT}")
    if "ws" in transports:
        out.append(f"/ip4/0.0.0.0/tcp/{WS_PORT}/ws")
    return out


def acl(spec: models.AclSpec) -> sc.AclConfig:
    return sc.AclConfig(mode=spec.mode, allow=list(spec.allow), deny=list(spec.deny))


@dataclass(frozen=True)
class VlanPart:
    """The part of a member's config shared by all members of one VLAN."""

    vlan_name: str
    label: str
    creator_hex: str
    interface: str
    mtu: int
    transports: tuple[str, ...]
    bootstrap: tuple[str, ...]
    relay: bool
    acl: models.AclSpec
    security: str = "open"
    rekey_interval_s: float = 3600.0
    mode: Literal["tap", "tun"] = "tap"

    def to_json(self) -> str:
        return json.dumps(
            {
                "vlan": self.vlan_config(address=None, mac=None).model_dump(mode="json"),
                "listen": listen_addrs(self.transports),
                "bootstrap": list(self.bootstrap),
                "relay": {"enabled": self.relay, "acl": acl(self.acl).model_dump(mode="json")},
            },
            sort_keys=True,
            indent=2,
        )

    def vlan_config(self, *, address: str | None, mac: str | None) -> sc.VlanConfig:
        private = self.security == "mls"
        return sc.VlanConfig(
            label=self.label,
            creator=self.creator_hex,
            security="mls" if private else "open",
            credential=credential_file(self.vlan_name) if private else None,
            rekey_interval_s=self.rekey_interval_s,
            interface=sc.InterfaceConfig(
                name=self.interface, mode=self.mode, mtu=self.mtu, address=address, mac=mac
            ),
        )


@dataclass(frozen=True)
class MemberVlan:
    part: VlanPart
    address: str | None
    mac: str


def member_config(vlans: Sequence[MemberVlan]) -> str:
    """The node.json of one pod; raises pydantic.ValidationError for impossible combinations."""
    ordered = sorted(vlans, key=lambda v: v.part.vlan_name)
    listen: list[str] = []
    bootstrap: list[str] = []
    for v in ordered:
        listen += [a for a in listen_addrs(v.part.transports) if a not in listen]
        bootstrap += [a for a in v.part.bootstrap if a not in bootstrap]
    relaying = [v.part for v in ordered if v.part.relay]
    relay = sc.RelayConfig(enabled=True, acl=acl(relaying[0].acl)) if relaying else sc.RelayConfig()
    cfg = sc.NodeConfig(
        identity=sc.IdentityConfig(key_file=KEY_FILE),
        listen=listen,
        bootstrap=bootstrap,
        api=sc.ApiConfig(listen=API_LISTEN),
        relay=relay,
        vlans=[v.part.vlan_config(address=v.address, mac=v.mac) for v in ordered],
    )
    return cfg.model_dump_json(indent=2)


def relay_config(spec: models.MVLANSpec) -> str:
    cfg = sc.NodeConfig(
        identity=sc.IdentityConfig(key_file=KEY_FILE),
        listen=listen_addrs(["tcp"]),
        bootstrap=list(spec.bootstrap_peers),
        api=sc.ApiConfig(listen=API_LISTEN),
        relay=sc.RelayConfig(enabled=True, acl=acl(spec.relays.acl)),
        vlans=[],
    )
    return cfg.model_dump_json(indent=2)
