"""Render sidecar configurations (`peertap.sidecar.config.NodeConfig`) for members and relays.

Private VLANs (security "mls") name the member's credential file, which the
operator keeps in the pod's credential Secret next to node.json; public VLANs
have the file too (it proves membership to tools) but do not reference it.
The CRD's old security name "open" renders as "public".

Trunk admission: members and relays run in credential mode, admitting peers that
present a node credential signed by the authority of one of their VLANs (a relay:
of the CryptoVLANs referencing its MVLAN), and present their own node credentials
(`node_credentials.file_name`). A relay without such VLANs admits only its
bootstrap peers (mode peers, no peer listed): credential mode needs an authority.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from peertap.sidecar import config as sc
from peertap.sidecar.wire import MAX_INTRO_CREDENTIALS

from . import models, node_credentials

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


def admission(authorities: Mapping[str, str]) -> sc.AdmissionConfig:
    """Trunk admission of a node whose credentials come from `authorities` (VLAN name ->
    authority public key, hex): credential mode with those authorities, presenting one node
    credential file per distinct authority (at most MAX_INTRO_CREDENTIALS); with none,
    peers mode with no peer listed, which admits only the node's bootstrap peers."""
    if not authorities:
        return sc.AdmissionConfig(mode="peers", peers=[])
    # One credential per authority is enough to be admitted, and an INTRO carries at most
    # MAX_INTRO_CREDENTIALS: present the first VLAN's (by name) of each authority, up to that.
    presented: dict[str, str] = {}
    for vlan in sorted(authorities):
        if len(presented) < MAX_INTRO_CREDENTIALS:
            presented.setdefault(authorities[vlan], node_credentials.file_name(vlan))
    return sc.AdmissionConfig(
        mode="credential",
        authorities=sorted(set(authorities.values())),
        credentials=sorted(presented.values()),
    )


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
    security: str = "public"
    rekey_interval_s: float = 3600.0
    mode: Literal["tap", "tun"] = "tap"
    # Private VLANs: from the MVLAN's presenceInterval (HELLO period = timeout / 3).
    member_timeout_s: float | None = None
    # Private VLANs: the file holding the VLAN's revocation list (absent: none).
    revocations_file: str | None = None

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
        config = sc.VlanConfig(
            label=self.label,
            creator=self.creator_hex,
            security="mls" if private else "public",
            credential=credential_file(self.vlan_name) if private else None,
            revocations=self.revocations_file if private else None,
            rekey_interval_s=self.rekey_interval_s,
            interface=sc.InterfaceConfig(
                name=self.interface, mode=self.mode, mtu=self.mtu, address=address, mac=mac
            ),
        )
        if private and self.member_timeout_s is not None:
            config = config.model_copy(update={"member_timeout_s": self.member_timeout_s})
        return config


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
        admission=admission({v.part.vlan_name: v.part.creator_hex for v in ordered}),
    )
    return cfg.model_dump_json(indent=2)


def relay_config(
    spec: models.MVLANSpec,
    authorities: Mapping[str, str],
    *,
    vlan_ids: Sequence[str] = (),
    revocations: Sequence[tuple[str, str, str]] = (),
) -> str:
    """The node.json every relay of an MVLAN shares; `authorities` maps the CryptoVLANs the
    relays serve to their authority public keys (hex), `vlan_ids` are their VLAN-IDs, and
    `revocations` names, per private VLAN served (creator hex, label, file), the file that
    holds its revocation list (absent until there is one).

    A relay is a member of no VLAN, so the sidecar's `restricted` ACL would forward nothing:
    the CRD's `restricted` (the default) means the VLANs the relays serve, rendered as a
    list of exactly their VLAN-IDs."""
    relay_acl = acl(spec.relays.acl)
    if spec.relays.acl.mode == "restricted" and vlan_ids:
        relay_acl = sc.AclConfig(mode="list", allow=sorted(set(vlan_ids)))
    cfg = sc.NodeConfig(
        identity=sc.IdentityConfig(key_file=KEY_FILE),
        listen=listen_addrs(["tcp"]),
        bootstrap=list(spec.bootstrap_peers),
        api=sc.ApiConfig(listen=API_LISTEN),
        relay=sc.RelayConfig(
            enabled=True,
            acl=relay_acl,
            revocations=[
                sc.RelayRevocations(creator=c, label=label, file=f) for c, label, f in revocations
            ],
        ),
        vlans=[],
        admission=admission(authorities),
    )
    return cfg.model_dump_json(indent=2)
