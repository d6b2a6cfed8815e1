"""Typed errors of the lab: what failed, on which pod or resource."""

from __future__ import annotations


class LabError(Exception):
    """Base class of every lab failure."""


class LabSpecError(LabError):
    """The spec or prefix cannot be turned into a lab (names, addresses, paths)."""


class LabStateError(LabError):
    """The state directory is unusable: busy with another lab, or holds no lab."""


class NetnsError(LabError):
    """A namespace, veth, address, route or sysctl operation failed."""


class NodeError(LabError):
    """A peertap node could not be started, stopped or reached."""


class NodeExited(NodeError):
    """A node process exited while the lab expected it to run."""

    def __init__(self, pod: str, returncode: int, log_tail: str) -> None:
        super().__init__(f"node {pod} exited with {returncode}; log ends with:\n{log_tail}")
        self.pod = pod
        self.returncode = returncode
        self.log_tail = log_tail


class NodeNotReady(NodeError):
    """A node did not answer /readyz with 200 before the deadline."""


class NodeApiUnreachable(NodeError):
    """Nothing answered HTTP on the node's API address inside its namespace."""
