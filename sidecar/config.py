"""Node configuration: the JSON file `peertap run --config` reads, validated by pydantic.

This module is the public configuration API: the operator renders these models
for its sidecars, `peertap config schema` prints their JSON Schema, and
`docs/config.md` documents every field.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

HEX64 = re.compile(r"^[0-9a-f]{64}$")
VLAN_PATTERN = re.compile(r"^[0-9a-f*?]{1,32}$")
IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
PEER_ID = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{40,60}$")


class ConfigError(Exception):
    """The configuration file is missing, not JSON, or fails validation."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentityConfig(_Model):
    key_file: str = Field(
        default="node.key",
        description="Ed25519 private key (PEM, as written by `peertap keygen`). "
        "Relative paths are resolved against the config file's directory.",
    )


class ApiConfig(_Model):
    listen: str = Field(
        default="127.0.0.1:9464",
        description="HOST:PORT of the local HTTP API (/healthz, /readyz, /status, /metrics). "
        "Empty string disables the API.",
    )
    vlan_control: bool = Field(
        default=False,
        description="Let the web UI join and leave this node's public and psk VLANs at run "
        "time (POST /ui/vlans/{label}/join|leave), answered only to loopback clients. "
        "Needs `listen` on a loopback address.",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        if v == "":
            return v
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"api.listen must be HOST:PORT, got {v!r}")
        return v

    @model_validator(mode="after")
    def _control_on_loopback(self) -> ApiConfig:
        if self.vlan_control and not is_loopback_host(self.listen.rpartition(":")[0]):
            raise ValueError(
                "api.vlan_control needs api.listen on a loopback address (127.0.0.1:PORT or "
                f"[::1]:PORT), got {self.listen!r}: joining and leaving VLANs is offered only "
                "to the node's own host"
            )
        return self


def is_loopback_host(host: str) -> bool:
    """Whether HOST (an IP literal, optionally in brackets, or `localhost`) is loopback."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AclConfig(_Model):
    mode: Literal["open", "restricted", "list"] = Field(
        default="restricted",
        description="open: forward any VLAN; restricted: only VLANs this node is a member of; "
        "list: VLAN-IDs matching `allow` and not matching `deny`.",
    )
    allow: list[str] = Field(
        default_factory=list,
        description="VLAN-ID patterns (lower-case hex, * and ? wildcards) allowed in list mode.",
    )
    deny: list[str] = Field(
        default_factory=list,
        description="VLAN-ID patterns denied in list mode (deny wins over allow).",
    )

    @field_validator("allow", "deny")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        for p in v:
            if not VLAN_PATTERN.match(p):
                raise ValueError(
                    f"VLAN-ID pattern {p!r} must be 1-32 chars of lower-case hex, * or ?"
                )
        return v

    @model_validator(mode="after")
    def _list_needs_allow(self) -> AclConfig:
        if self.mode == "list" and not self.allow:
            raise ValueError("acl.mode 'list' needs at least one `allow` pattern")
        return self


class RelayRevocations(_Model):
    creator: str = Field(description="64 hex chars: the private VLAN's creator (authority).")
    label: str = Field(min_length=1, max_length=253, description="The private VLAN's label.")
    file: str = Field(
        description="The authority's revocation list for it (`peertap authority revoke`); "
        "re-read when it changes, a missing file means none. Relative paths are resolved "
        "against the config file's directory."
    )

    @field_validator("creator")
    @classmethod
    def _creator(cls, v: str) -> str:
        if not HEX64.match(v):
            raise ValueError("creator must be 64 lower-case hex chars (an Ed25519 public key)")
        return v


class RelayConfig(_Model):
    enabled: bool = Field(
        default=False, description="Forward other nodes' packets by VFT across this node's trunks."
    )
    acl: AclConfig = Field(default_factory=AclConfig)
    revocations: list[RelayRevocations] = Field(
        default_factory=list,
        description="Revocation lists of private VLANs this node is not a member of: it sends "
        "each over the management VLAN (and the newest version it hears) so members refuse "
        "the revoked keys. Members take lists from their VLAN's `revocations` field.",
    )


class InterfaceConfig(_Model):
    name: str = Field(default="pt0", description="Interface name (at most 15 characters).")
    mode: Literal["tap", "tun"] = Field(
        default="tap",
        description="tap: a kernel TAP device; tun: a kernel TUN device (IP only) with Ethernet "
        "emulated by the node (ARP and neighbour discovery answered locally), for hosts "
        "that cannot use TAP.",
    )
    mtu: int = Field(default=1500, ge=576, le=9000, description="Interface MTU.")
    address: str | None = Field(
        default=None, description="Optional IPv4/IPv6 address with prefix, e.g. 10.250.0.1/24."
    )
    mac: str | None = Field(
        default=None,
        description="Fixed MAC (lower-case aa:bb:cc:dd:ee:ff). Default: derived from the node key, "
        "VLAN-ID and a random nonce (locally administered, unicast).",
    )
    offload: bool = Field(
        default=True,
        description="Use IFF_VNET_HDR with TSO/GSO offloads when the kernel supports them.",
    )

    @field_validator("name")
    @classmethod
    def _ifname(cls, v: str) -> str:
        if not IFNAME.match(v):
            raise ValueError(f"interface name {v!r} must be 1-15 chars of [A-Za-z0-9_.-]")
        return v

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ipaddress.ip_interface(v)
            except ValueError as err:
                raise ValueError(f"interface address {v!r} is not ADDRESS/PREFIX") from err
            if "/" not in v:
                raise ValueError(f"interface address {v!r} needs a /prefix")
        return v

    @field_validator("mac")
    @classmethod
    def _mac(cls, v: str | None) -> str | None:
        if v is not None:
            if not MAC.match(v):
                raise ValueError(f"mac {v!r} must be lower-case aa:bb:cc:dd:ee:ff")
            if int(v[:2], 16) & 1:
                raise ValueError(f"mac {v!r} is a multicast address")
        return v


class VlanConfig(_Model):
    label: str = Field(
        min_length=1, max_length=253, description="VLAN label (part of the VLAN-ID)."
    )
    creator: str = Field(
        description="64 hex chars: the creator's (authority's) Ed25519 public key. "
        "VLAN-ID = BLAKE3-128(creator || label)."
    )
    security: Literal["public", "psk", "mls"] = Field(
        default="public",
        description="public: zero-setup, frame key derived from creator key and label, so "
        "anyone who knows both (neither is secret) can read the VLAN; relays see only the "
        "VLAN-ID. psk: key from a 256-bit pre-shared secret (`psk_file`). mls: keys from the "
        "VLAN's MLS group (private VLAN). `open` is accepted as the old name of public.",
    )
    psk_file: str | None = Field(
        default=None,
        description="security psk: file with the 256-bit secret as 64 hex chars; further lines "
        "hold older secrets still accepted while a rotation rolls out. Re-read when it "
        "changes (no restart). Relative paths are resolved against the config file's "
        "directory. `peertap psk --out FILE` makes one.",
    )
    credential: str | None = Field(
        default=None,
        description="security mls: path of this member's credential, signed by the VLAN "
        "authority (`peertap authority issue`). Relative paths are resolved against the config "
        "file's directory.",
    )
    revocations: str | None = Field(
        default=None,
        description="security mls: path of the VLAN authority's revocation list (`peertap "
        "authority revoke`). Re-read when it changes; a missing file means no list; a file "
        "that does not verify is logged and the last good list is kept. Members refuse the "
        "keys it names and send it on over the management VLAN. Relative paths are "
        "resolved against the config file's directory.",
    )
    rekey_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="security mls: the committer starts a fresh key epoch (an MLS commit with a "
        "new path) after this long without one.",
    )
    member_timeout_s: float = Field(
        default=30.0,
        ge=1.0,
        description="security mls: a member not heard (presence HELLO on the management VLAN) "
        "for this long is removed from the group; HELLOs are sent every member_timeout_s / 3.",
    )
    epoch_grace_s: float = Field(
        default=10.0,
        ge=0,
        description="security mls: frames of the previous key epoch are still accepted for this "
        "long after an epoch change, then its keys are erased.",
    )
    interface: InterfaceConfig = Field(default_factory=InterfaceConfig)
    start: Literal["joined", "left"] = Field(
        default="joined",
        description="With api.vlan_control: `left` starts the node without this VLAN (no "
        "interface, no keys, no announcements) until the web UI joins it. public and psk "
        "VLANs only.",
    )

    @field_validator("creator")
    @classmethod
    def _creator(cls, v: str) -> str:
        if not HEX64.match(v):
            raise ValueError("creator must be 64 lower-case hex chars (an Ed25519 public key)")
        return v

    @field_validator("security", mode="before")
    @classmethod
    def _old_name(cls, v: object) -> object:
        return "public" if v == "open" else v

    @model_validator(mode="after")
    def _security(self) -> VlanConfig:
        if self.security == "mls" and not self.credential:
            raise ValueError("security 'mls' needs `credential` (the member credential file)")
        if self.security != "mls" and self.credential:
            raise ValueError("`credential` is used only with security 'mls'")
        if self.security != "mls" and self.revocations:
            raise ValueError("`revocations` is used only with security 'mls'")
        if self.security == "psk" and not self.psk_file:
            raise ValueError("security 'psk' needs `psk_file` (the pre-shared secret file)")
        if self.security != "psk" and self.psk_file:
            raise ValueError("`psk_file` is used only with security 'psk'")
        if self.start == "left" and self.security == "mls":
            raise ValueError(
                "start 'left' is for public and psk VLANs: an mls VLAN cannot be joined or "
                "left at run time"
            )
        return self


class TrunkConfig(_Model):
    reconnect_min_s: float = Field(default=0.5, gt=0, description="First reconnect delay.")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="Reconnect delay cap.")
    queue_bytes: int = Field(
        # 2 MiB, not the trunk's own 4 MiB: a node flooded with small packets peaked at
        # 127-129 MiB RSS with 4 MiB queues and 119-124 MiB with 2 MiB (docs/operations.md).
        default=2 * 1024 * 1024,
        ge=65536,
        description="Per-peer send queue bound; packets for a peer whose queue is full are "
        "dropped (counted `queue_full`), like a switch port's.",
    )
    security: Literal["noise", "tls"] = Field(default="noise", description="Trunk encryption.")
    stall_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="A peer that accepts no byte of what is queued for it for this long is "
        "disconnected (it stopped reading); while its queue is full, packets for it are "
        "dropped and counted `queue_full`.",
    )
    datagram: bool = Field(
        default=True,
        description="Carry DATA packets in UDP datagrams to peers that offer it too, keyed "
        "over the trunk stream; the stream carries them whenever no datagram path is up.",
    )
    datagram_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="UDP port of the datagram path. Default: the port of the first TCP "
        "listen address (any free port if that is 0).",
    )


class RoutingConfig(_Model):
    announce_interval_s: float = Field(
        default=10.0, gt=0, description="How often a node re-announces the VFTs it wants."
    )
    route_ttl_s: float = Field(
        default=35.0, gt=0, description="A learned VFT route expires after this long unrefreshed."
    )
    hop_limit: int = Field(default=16, ge=1, le=255, description="Initial hop limit of packets.")
    probe_interval_s: float = Field(
        default=0.1,
        ge=0.01,
        le=10.0,
        description="How often a node probes each trunk peer to score the path (latency, "
        "loss, load); a path silent for 0.3 s is avoided while another exists.",
    )


class AdmissionConfig(_Model):
    mode: Literal["open", "peers", "credential"] | None = Field(
        default=None,
        description="Whom this node accepts as a trunk peer. open: anyone; peers: the peer ids "
        "in `peers`; credential: peers presenting a node credential signed by one of "
        "`authorities`. Bootstrap peers are always accepted. Default: open for a node that "
        "does not relay, peers for a relay (so a relay serves nobody it was not told about).",
    )
    peers: list[str] = Field(
        default_factory=list, description="peers mode: admitted libp2p peer ids (12D3Koo...)."
    )
    authorities: list[str] = Field(
        default_factory=list,
        description="credential mode: Ed25519 public keys (64 hex) whose node credentials "
        "admit a peer, e.g. the authority (creator) of a private VLAN.",
    )
    credentials: list[str] = Field(
        default_factory=list,
        description="This node's own node credentials (`peertap authority issue-node`), "
        "presented to every peer; re-read when they change. Relative paths are resolved "
        "against the config file's directory.",
    )

    @field_validator("peers")
    @classmethod
    def _peer_ids(cls, v: list[str]) -> list[str]:
        for p in v:
            if not PEER_ID.match(p):
                raise ValueError(f"{p!r} is not a base58 libp2p peer id")
        return v

    @field_validator("authorities")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        for k in v:
            if not HEX64.match(k):
                raise ValueError(f"authority {k!r} must be 64 lower-case hex chars")
        return v

    @model_validator(mode="after")
    def _mode_needs(self) -> AdmissionConfig:
        if self.mode == "credential" and not self.authorities:
            raise ValueError("admission mode 'credential' needs at least one authority")
        return self


class LimitsConfig(_Model):
    clock_skew_s: float = Field(
        default=60.0,
        gt=0,
        description="Largest clock difference tolerated between nodes: signed ANNOUNCE and "
        "CONTROL stamps outside it are refused (keep clocks in sync, e.g. with NTP).",
    )
    announce_per_trunk_per_s: float = Field(
        default=200.0, gt=0, description="ANNOUNCEs taken from one trunk peer per second."
    )
    announce_per_origin_per_s: float = Field(
        default=2.0, gt=0, description="ANNOUNCEs taken from one origin per second."
    )
    control_per_trunk_per_s: float = Field(
        default=500.0, gt=0, description="CONTROL packets taken from one trunk peer per second."
    )
    control_per_origin_per_s: float = Field(
        default=20.0, gt=0, description="CONTROL packets taken from one signer per second."
    )


Multiaddr = Annotated[str, Field(pattern=r"^/")]


class NodeConfig(_Model):
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    listen: list[Multiaddr] = Field(
        default_factory=lambda: ["/ip4/0.0.0.0/tcp/4001"],
        description="libp2p listen multiaddrs (TCP; /ws suffix for WebSocket).",
    )
    bootstrap: list[Multiaddr] = Field(
        default_factory=list,
        description="Peers to keep a trunk to: full multiaddrs ending in /p2p/<peer-id>.",
    )
    api: ApiConfig = Field(default_factory=ApiConfig)
    relay: RelayConfig = Field(default_factory=RelayConfig)
    vlans: list[VlanConfig] = Field(default_factory=list)
    trunk: TrunkConfig = Field(default_factory=TrunkConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    admission: AdmissionConfig = Field(default_factory=AdmissionConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)

    @property
    def admission_mode(self) -> Literal["open", "peers", "credential"]:
        """The admission mode in force (docs/config.md: the default depends on relaying)."""
        if self.admission.mode is not None:
            return self.admission.mode
        return "peers" if self.relay.enabled else "open"

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap(cls, v: list[str]) -> list[str]:
        for a in v:
            if "/p2p/" not in a:
                raise ValueError(f"bootstrap address {a!r} must end in /p2p/<peer-id>")
        return v

    @model_validator(mode="after")
    def _unique(self) -> NodeConfig:
        names = [v.interface.name for v in self.vlans]
        if len(set(names)) != len(names):
            raise ValueError("two VLANs use the same interface name")
        keys = [(v.creator, v.label) for v in self.vlans]
        if len(set(keys)) != len(keys):
            raise ValueError("the same VLAN (creator, label) is listed twice")
        if not self.vlans and not self.relay.enabled:
            raise ValueError("a node with no VLANs must enable relay (it would do nothing)")
        left = [v.label for v in self.vlans if v.start == "left"]
        if left and not self.api.vlan_control:
            raise ValueError(
                f"VLAN {left[0]!r} has start 'left' but api.vlan_control is false: "
                "nothing could join it"
            )
        return self


def load(path: str | Path) -> tuple[NodeConfig, Path]:
    """Read and validate a config file; returns it and the directory relative paths use."""
    p = Path(path)
    try:
        raw = p.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config {p}: {err.strerror}") from err
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{p}: not valid JSON: {err}") from err
    try:
        return NodeConfig.model_validate(data), p.resolve().parent
    except ValidationError as err:
        raise ConfigError(f"{p}: invalid configuration:\n{_explain(err)}") from err


def _explain(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(x) for x in e["loc"]) or "(top level)"
        lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)


def json_schema() -> dict[str, object]:
    return NodeConfig.model_json_schema()
