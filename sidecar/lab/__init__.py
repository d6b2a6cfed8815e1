"""Local lab: network namespaces on a veth underlay running peertap nodes (API and CLI).

Public API: `Lab`, `LabSpec` and its parts, `topology()` and the errors.
"""

from .errors import (
    LabError,
    LabSpecError,
    LabStateError,
    NetnsError,
    NodeApiUnreachable,
    NodeError,
    NodeExited,
    NodeNotReady,
)
from .http import HttpResponse
from .lab import Lab, random_prefix
from .nodes import NODE_CMD_ENV
from .spec import BootstrapSpec, LabSpec, LinkSpec, NodeRole, PodSpec
from .topologies import IPV6_UNDERLAY, topology

__all__ = [
    "IPV6_UNDERLAY",
    "NODE_CMD_ENV",
    "BootstrapSpec",
    "HttpResponse",
    "Lab",
    "LabError",
    "LabSpec",
    "LabSpecError",
    "LabStateError",
    "LinkSpec",
    "NetnsError",
    "NodeApiUnreachable",
    "NodeError",
    "NodeExited",
    "NodeNotReady",
    "NodeRole",
    "PodSpec",
    "random_prefix",
    "topology",
]
