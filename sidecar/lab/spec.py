"""Lab specification: pods, underlay links, peertap roles and bootstrap edges (pydantic, JSON).

A spec says what to build; `plan.py` derives the addresses, routes and names
from it, so the same spec always yields the same lab (apart from the prefix).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

POD_NAME = r"^[a-z][a-z0-9]{0,9}$"
IPV6_LINK_PREFIXLEN = 64
IPV6_MIN_BASE = 56  # the longest IPv6 underlay_base prefix: 256 links of /64


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeRole(_Model):
    role: Literal["member", "relay"] = Field(
        description="member: joins the lab VLAN with a TAP; relay: pure relay (no VLAN, open ACL)."
    )
    address: str | None = Field(
        default=None,
        description="Member interface address with prefix; default 10.250.0.<n>/24, n counting "
        "members in pod order from 1.",
    )

    @model_validator(mode="after")
    def _relay_has_no_address(self) -> NodeRole:
        if self.role == "relay" and self.address is not None:
            raise ValueError("a pure relay has no VLAN interface, so no address")
        if self.address is not None:
            ipaddress.ip_interface(self.address)
        return self


class PodSpec(_Model):
    name: str = Field(pattern=POD_NAME, description="Pod name (a-z0-9, at most 10 chars).")
    ip_forward: bool = Field(
        default=False, description="Route IP (IPv4 or IPv6, the underlay's family) for other pods."
    )
    node: NodeRole | None = Field(default=None, description="Run peertap here, in this role.")


class LinkSpec(_Model):
    a: str = Field(pattern=POD_NAME)
    b: str = Field(pattern=POD_NAME)


class BootstrapSpec(_Model):
    dialer: str = Field(pattern=POD_NAME, description="The node that dials.")
    target: str = Field(pattern=POD_NAME, description="The node it keeps a trunk to.")


class LabSpec(_Model):
    pods: list[PodSpec]
    links: list[LinkSpec] = Field(default_factory=list)
    bootstrap: list[BootstrapSpec] = Field(default_factory=list)
    underlay_base: str = Field(
        default="10.231.0.0/16",
        description="Network the link subnets are cut from: IPv4 (at least a /24) or IPv6 (at "
        "least a /56); an IPv6 base gives an IPv6-only underlay.",
    )
    link_prefixlen: Literal[24, 30, 64] = Field(
        default=24,
        description="Size of each link subnet: 24 or 30 with an IPv4 base, 64 with an IPv6 one "
        "(the default when the base is IPv6).",
    )
    vlan_label: str = Field(default="lab", min_length=1)
    security: Literal["public", "psk", "mls"] = Field(
        default="public",
        description="The lab VLAN's security: public (readable by whoever knows creator and "
        "label), psk (a pre-shared secret the lab generates), or mls (a private VLAN: every "
        "member gets a credential from the lab's VLAN creator). `open` means public.",
    )
    vlan_control: bool = Field(
        default=False,
        description="Members' configs (not relays') set api.vlan_control: their web UI (and POST "
        "/ui/vlans/LABEL/join|leave inside the pod) may leave and join the lab VLAN.",
    )
    trace: bool = Field(default=True, description="Start nodes with --trace (costs speed).")
    datagram: bool = Field(
        default=True,
        description="Nodes' trunk.datagram: DATA in UDP datagrams where both ends offer it "
        "(false: every packet on the trunk stream).",
    )
    trace_format: Literal["jsonl", "pcapng"] = Field(
        default="jsonl",
        description="Trace file format: JSON lines (node.trace) or pcapng (node.pcapng).",
    )

    @field_validator("security", mode="before")
    @classmethod
    def _old_name(cls, v: object) -> object:
        return "public" if v == "open" else v

    @model_validator(mode="before")
    @classmethod
    def _link_prefixlen_for_family(cls, data: object) -> object:
        # 24 is the IPv4 default; an IPv6 base left without a link size gets /64 links.
        if isinstance(data, dict) and "link_prefixlen" not in data:
            base = data.get("underlay_base")
            if isinstance(base, str) and ":" in base:
                return {**data, "link_prefixlen": IPV6_LINK_PREFIXLEN}
        return data

    @field_validator("underlay_base")
    @classmethod
    def _base(cls, v: str) -> str:
        net = ipaddress.ip_network(v)
        if net.version == 4 and net.prefixlen > 24:
            raise ValueError("underlay_base must be at least a /24")
        if net.version == 6 and net.prefixlen > IPV6_MIN_BASE:
            raise ValueError(
                f"an IPv6 underlay_base must be at least a /{IPV6_MIN_BASE}: every link takes a "
                f"/{IPV6_LINK_PREFIXLEN} (the subnet size IPv6 hosts and neighbour discovery "
                f"expect), and a /{IPV6_MIN_BASE} holds {2 ** (64 - IPV6_MIN_BASE)} of them"
            )
        return str(net)

    @model_validator(mode="after")
    def _consistent(self) -> LabSpec:
        version = ipaddress.ip_network(self.underlay_base).version
        if (version == 6) != (self.link_prefixlen == IPV6_LINK_PREFIXLEN):
            allowed = f"{IPV6_LINK_PREFIXLEN}" if version == 6 else "24 or 30"
            raise ValueError(
                f"link_prefixlen {self.link_prefixlen} does not fit the IPv{version} "
                f"underlay_base {self.underlay_base}: use {allowed}"
            )
        names = [p.name for p in self.pods]
        if len(set(names)) != len(names):
            raise ValueError("pod names must be unique")
        known = set(names)
        pairs: set[frozenset[str]] = set()
        for link in self.links:
            if link.a == link.b or not {link.a, link.b} <= known:
                raise ValueError(f"link {link.a}-{link.b} must join two different known pods")
            pair = frozenset((link.a, link.b))
            if pair in pairs:
                raise ValueError(f"pods {link.a} and {link.b} are linked twice")
            pairs.add(pair)
        nodes = {p.name for p in self.pods if p.node is not None}
        for edge in self.bootstrap:
            if not {edge.dialer, edge.target} <= nodes or edge.dialer == edge.target:
                raise ValueError(
                    f"bootstrap {edge.dialer}->{edge.target} must join two different peertap pods"
                )
        return self

    def pod(self, name: str) -> PodSpec:
        for p in self.pods:
            if p.name == name:
                return p
        raise KeyError(name)
