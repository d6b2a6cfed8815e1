"""Pydantic models of the CryptoVLAN and MVLAN custom resources: the source of truth.

`hack/gen-crds.py` turns these models into the CustomResourceDefinitions in
`crds/`; the operator parses every object it reads through them, so a field
exists in the CRD exactly when the operator understands it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "peertap.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"
IFNAME_PATTERN = r"^[A-Za-z0-9_.-]{1,15}$"
LABEL_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?$"
CIDR_PATTERN = r"^[0-9a-fA-F:.]+/[0-9]{1,3}$"
MULTIADDR_PATTERN = r"^/.+/p2p/[1-9A-HJ-NP-Za-km-z]+$"
VLAN_ID_PATTERN = r"^[0-9a-f*?]{1,32}$"
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
MAX_RELAYS = 16
# CRD validation rules (CEL) are costed by the API server from maxLength/maxItems: keep
# every string and list a rule reads bounded.
MAX_PATTERNS = 64
CEL = "x-kubernetes-validations"

Multiaddr = Annotated[str, Field(pattern=MULTIADDR_PATTERN)]
VlanIdPattern = Annotated[str, Field(pattern=VLAN_ID_PATTERN, max_length=32)]
ObjectName = Annotated[str, Field(pattern=K8S_NAME_PATTERN)]
Transport = Literal["tcp", "ws"]


def _default_transports() -> list[Transport]:
    return ["tcp"]


class CrdModel(BaseModel):
    """Base of every CRD model: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class LabelSelectorRequirement(CrdModel):
    key: str = Field(description="The label key the selector applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the key relates to the values."
    )
    values: list[str] = Field(
        default_factory=list,
        description="Values for In and NotIn; must be empty for Exists and DoesNotExist.",
    )


class LabelSelector(CrdModel):
    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels a pod must carry with exactly these values."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Set-based requirements, all of which must hold."
    )


class IpamSpec(CrdModel):
    subnet: str | None = Field(
        default=None,
        pattern=CIDR_PATTERN,
        max_length=43,
        description="CIDR (network address, e.g. 10.250.0.0/24) members get addresses from. "
        "Omit for interfaces without an address.",
    )


class InterfaceSpec(CrdModel):
    name: str | None = Field(
        default=None,
        pattern=IFNAME_PATTERN,
        description="Interface name in the pod. Default: pt-<label>, cut to 15 characters.",
    )
    mode: Literal["tap", "tun"] = Field(
        default="tap",
        description="tap: kernel TAP device; tun: TUN with L2 emulated by the sidecar.",
    )
    mtu: int = Field(default=1500, ge=576, le=9000, description="Interface MTU.")
    ipam: IpamSpec = Field(default_factory=IpamSpec, description="Address management.")


class AclSpec(CrdModel):
    model_config = ConfigDict(
        json_schema_extra={
            CEL: [
                {
                    # The schema's default ({}) is validated as written, without the
                    # defaults of its fields: every field may be absent.
                    "rule": "!has(self.mode) || self.mode != 'list' || "
                    "(has(self.allow) && size(self.allow) > 0)",
                    "message": "acl.mode 'list' needs at least one allow pattern",
                }
            ]
        }
    )

    mode: Literal["open", "restricted", "list"] = Field(
        default="restricted",
        description="open: forward any VLAN; restricted: only VLANs the node is a member of; "
        "list: VLAN-IDs matching allow and not deny.",
    )
    allow: list[VlanIdPattern] = Field(
        default_factory=list,
        max_length=MAX_PATTERNS,
        description="VLAN-ID patterns (lower-case hex, * and ?) allowed in list mode.",
    )
    deny: list[VlanIdPattern] = Field(
        default_factory=list,
        max_length=MAX_PATTERNS,
        description="VLAN-ID patterns denied in list mode (deny wins).",
    )


class RelayPolicySpec(CrdModel):
    enabled: bool = Field(
        default=False, description="Members also relay other nodes' packets by VFT."
    )
    acl: AclSpec = Field(default_factory=AclSpec, description="What members relay.")


class ObjectRef(CrdModel):
    name: str = Field(pattern=K8S_NAME_PATTERN, description="Name in the same namespace.")


class CryptoVLANSpec(CrdModel):
    model_config = ConfigDict(
        json_schema_extra={
            CEL: [
                {
                    # Holds with the admission webhook down; the webhook and the operator
                    # also compare against the label in force when spec.label was omitted.
                    "rule": "has(self.label) == has(oldSelf.label) && "
                    "(!has(self.label) || self.label == oldSelf.label)",
                    "message": "spec.label is immutable (it is part of the VLAN-ID); "
                    "create a new CryptoVLAN for another label",
                }
            ]
        }
    )

    label: str | None = Field(
        default=None,
        pattern=LABEL_PATTERN,
        max_length=253,
        description="VLAN label, part of the VLAN-ID; immutable. Default: metadata.name.",
    )
    security: Literal["mls", "public", "open"] = Field(
        default="mls",
        description="mls: private VLAN, members need a credential from the VLAN authority; "
        "public: frame key derived from label and authority key, so anyone who knows both "
        "can read the VLAN; open: deprecated name of public.",
    )
    interface: InterfaceSpec = Field(
        default_factory=InterfaceSpec, description="The interface members get."
    )
    pod_selector: LabelSelector | None = Field(
        default=None,
        description="Pods in this namespace that join. Pods labelled peertap.io/vlans=<names> "
        "join as well. Omitted: only labelled pods.",
    )
    relay_policy: RelayPolicySpec = Field(
        default_factory=RelayPolicySpec, description="Relaying by member sidecars."
    )
    transports: list[Transport] = Field(
        default_factory=_default_transports, min_length=1, description="libp2p trunk transports."
    )
    bootstrap_peers: list[Multiaddr] = Field(
        default_factory=list,
        description="Multiaddrs ending in /p2p/<peer-id> members keep trunks to.",
    )
    rekey_interval: str = Field(
        default="1h", pattern=DURATION_PATTERN, description="MLS epoch length, e.g. 1h, 30m."
    )
    mvlan_ref: ObjectRef | None = Field(
        default=None, description="MVLAN whose relays members bootstrap from."
    )
    revoked_members: list[Annotated[str, Field(max_length=253)]] = Field(
        default_factory=list,
        max_length=1024,
        description="security mls: pods (by name) or member keys (64 hex) revoked from the "
        "VLAN. The operator publishes a signed revocation list to the members, whose "
        "committer removes the keys from the group within seconds; revoked pods are no "
        "longer members.",
    )


class Condition(CrdModel):
    type: str = Field(description="Condition type, e.g. Ready.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase reason.")
    message: str = Field(default="", description="Human-readable explanation.")
    last_transition_time: str = Field(
        default="", description="RFC 3339 time the status last changed."
    )
    observed_generation: int = Field(
        default=0, description="metadata.generation the condition was set from."
    )


class Member(CrdModel):
    pod: str = Field(description="Pod name.")
    node: str = Field(default="", description="Kubernetes node the pod runs on.")
    mac: str = Field(default="", description="MAC of the pod's VLAN interface.")
    address: str = Field(default="", description="Interface address with prefix, if any.")
    ready: bool = Field(default=False, description="The pod's sidecar reports ready.")
    epoch: int = Field(
        default=0, description="MLS epoch the pod's sidecar reported at the last resync."
    )
    mls_id: str = Field(
        default="",
        description="MLS-ID the pod's sidecar reported at the last resync; empty when it did "
        "not answer. Differs from status.mlsId while the member lags behind the group.",
    )


class CryptoVLANStatus(CrdModel):
    vlan_id: str = Field(default="", description="128-bit VLAN-ID, 32 hex characters.")
    member_count: int = Field(default=0, description="Number of members.")
    members: list[Member] = Field(default_factory=list, description="Member pods.")
    epoch: int = Field(
        default=0,
        description="MLS epoch most members' sidecars reported at the last resync (0: none did).",
    )
    mls_id: str = Field(
        default="",
        description="MLS-ID most members' sidecars reported at the last resync (empty: none did).",
    )
    conditions: list[Condition] = Field(default_factory=list, description="Ready, SpecValid.")
    observed_generation: int = Field(default=0, description="Last generation reconciled.")


class RelaysSpec(CrdModel):
    replicas: int = Field(
        default=1,
        ge=0,
        le=MAX_RELAYS,
        description="Relays, each with its own identity (key), Deployment and Service. "
        "0 pauses the first relay and removes the others.",
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="Service type exposing port 4001."
    )
    acl: AclSpec = Field(
        default_factory=AclSpec,
        description="What the relays forward. restricted (default): the CryptoVLANs they serve "
        "(those naming the MVLAN in mvlanRef or listed in cryptoVLANs); open: any VLAN; list: "
        "allow and deny patterns.",
    )


class MVLANSpec(CrdModel):
    bootstrap_peers: list[Multiaddr] = Field(
        default_factory=list,
        description="Multiaddrs (…/p2p/<peer-id>) of other domains' relays.",
    )
    relays: RelaysSpec = Field(default_factory=RelaysSpec, description="The relays.")
    presence_interval: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description="Presence HELLO period of the private CryptoVLANs served by this MVLAN: "
        "their members send a HELLO this often and drop a member not heard for three periods. "
        "Omitted: the sidecar's default (10s).",
    )
    crypto_vlans: list[ObjectName] = Field(
        alias="cryptoVLANs",
        default_factory=list,
        description="CryptoVLANs (same namespace) the relays serve besides those naming this "
        "MVLAN in mvlanRef: the relays admit their members and forward their traffic.",
    )


class MVLANStatus(CrdModel):
    relay_addresses: list[str] = Field(
        default_factory=list,
        description="Multiaddrs another cluster uses to reach the relays, most external first; "
        "each ends in its relay's /p2p/<peer-id>.",
    )
    peers_seen: int = Field(
        default=0,
        description="Distinct peers the relays reported trunks to at the last resync, "
        "not counting the relays themselves.",
    )
    conditions: list[Condition] = Field(default_factory=list, description="Ready.")
    observed_generation: int = Field(default=0, description="Last generation reconciled.")
