"""How PeerTap containers run: privileges, the command that drops them, and resources.

The sidecar and the relays need one privilege: CAP_NET_ADMIN, to create their TAP
devices and set addresses (a relay creates none, but shares the image and command).
Kubernetes cannot start a non-root process with a capability (it sets no ambient
capabilities, and file capabilities are blocked by `allowPrivilegeEscalation: false`),
so the container starts as root with only NET_ADMIN, SETUID and SETGID, and `setpriv`
(util-linux) switches at once to an unprivileged user keeping NET_ADMIN as an ambient
capability: `peertap` itself runs as that user with CAP_NET_ADMIN alone, no new privileges
possible. Everything else is dropped; seccomp is the runtime's default profile.

The config files are projected with mode 0440 and group root (or the pod's fsGroup,
when it sets one), so the unprivileged user keeps group 0 (and that fsGroup) to read them.
With `user` 0 the container instead runs `peertap` as root with NET_ADMIN alone.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JsonObj = dict[str, Any]

DEFAULT_USER = 65532
# Measured: a sidecar's RSS is 110-130 MiB under iperf3 load, a relay's peaked at 185 MiB
# (docs/operations.md, "Sizing").
DEFAULT_SIDECAR_RESOURCES: JsonObj = {
    "requests": {"cpu": "100m", "memory": "160Mi"},
    "limits": {"memory": "320Mi"},
}
DEFAULT_RELAY_RESOURCES: JsonObj = {
    "requests": {"cpu": "250m", "memory": "224Mi"},
    "limits": {"memory": "448Mi"},
}


@dataclass(frozen=True)
class PodSettings:
    """Operator-wide settings of the containers it renders (chart values `sidecar.*`)."""

    user: int = DEFAULT_USER
    sidecar_resources: Mapping[str, Any] = field(
        default_factory=lambda: copy.deepcopy(DEFAULT_SIDECAR_RESOURCES)
    )
    relay_resources: Mapping[str, Any] = field(
        default_factory=lambda: copy.deepcopy(DEFAULT_RELAY_RESOURCES)
    )


def command(config_path: str, *, user: int, groups: Sequence[int] = ()) -> list[str]:
    """The container command running `peertap run --config config_path` as `user`."""
    run = ["peertap", "run", "--config", config_path]
    if user == 0:
        return run
    wanted = [0, *(g for g in groups if g != 0)]
    return [
        "setpriv",
        f"--reuid={user}",
        f"--regid={user}",
        "--groups=" + ",".join(str(g) for g in wanted),
        "--inh-caps=-all,+net_admin",
        "--ambient-caps=-all,+net_admin",
        "--",
        *run,
    ]


def security_context(*, user: int) -> JsonObj:
    """The container securityContext matching `command(user=...)`."""
    caps = ["NET_ADMIN"] if user == 0 else ["NET_ADMIN", "SETGID", "SETUID"]
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsUser": 0,
        "runAsNonRoot": False,
        "capabilities": {"drop": ["ALL"], "add": caps},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_groups(pod: Mapping[str, Any]) -> list[int]:
    """The pod's fsGroup, if it sets one: projected files then belong to that group."""
    ctx = (pod.get("spec") or {}).get("securityContext") or {}
    group = ctx.get("fsGroup")
    return [group] if isinstance(group, int) and not isinstance(group, bool) else []
