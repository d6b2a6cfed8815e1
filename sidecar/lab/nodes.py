"""Peertap nodes in the lab: keys, config files and the command that runs a node.

The node command is `python -m peertap.sidecar run` unless the environment
variable PEERTAP_LAB_NODE_CMD names another (split like a shell would), e.g. a
stand-in daemon in tests. `--config PATH` and, when tracing, `--trace PATH`
are appended.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import admission, identity, ids
from ..config import (
    AclConfig,
    AdmissionConfig,
    ApiConfig,
    IdentityConfig,
    InterfaceConfig,
    NodeConfig,
    RelayConfig,
    TrunkConfig,
    VlanConfig,
)
from ..private import authority
from .errors import NodeError
from .netns import ns_argv
from .plan import API_LISTEN, TAP_NAME, TRUNK_PORT, Plan

NODE_CMD_ENV = "PEERTAP_LAB_NODE_CMD"
CREATOR_KEY = "vlan-creator.key"
CREDENTIAL = "member.cred"  # a private VLAN member's credential, beside its config
NODE_CREDENTIAL = "node.cred"  # every node's admission credential, beside its config
PSK = "vlan.psk"  # a psk VLAN's secret, beside each member's config
LAB_MEMBER_TIMEOUT_S = 6.0


def node_command() -> list[str]:
    override = os.environ.get(NODE_CMD_ENV, "").strip()
    if override:
        return shlex.split(override)
    return [sys.executable, "-m", "peertap.sidecar", "run"]


@dataclass(frozen=True)
class NodeFiles:
    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / "node.json"

    @property
    def key(self) -> Path:
        return self.dir / "node.key"

    @property
    def trace(self) -> Path:
        return self.dir / "node.trace"

    @property
    def pcapng(self) -> Path:
        return self.dir / "node.pcapng"

    def trace_file(self, trace_format: str) -> Path:
        return self.pcapng if trace_format == "pcapng" else self.trace

    @property
    def log(self) -> Path:
        return self.dir / "node.log"


def pod_dir(state_dir: Path, pod: str) -> Path:
    return state_dir / "pods" / pod


def write_node_files(plan: Plan, state_dir: Path) -> None:
    """Keys for the VLAN creator and each node, admission credentials (the creator is the
    lab's admission authority), a psk secret or member credentials, then each node's
    config."""
    creator = identity.generate()
    identity.save(creator, state_dir / CREATOR_KEY)
    vid = ids.vlan_id(creator.public_bytes, plan.spec.vlan_label)
    secret = os.urandom(32).hex()
    peer_ids: dict[str, str] = {}
    now = dt.datetime.now(dt.UTC)
    for pod in plan.node_pods():
        files = NodeFiles(pod_dir(state_dir, pod))
        files.dir.mkdir(parents=True, exist_ok=True)
        ident = identity.generate()
        identity.save(ident, files.key)
        peer_ids[pod] = ident.peer_id
        node_cred = admission.issue(
            authority=creator,
            node_key=ident.public_bytes,
            identity=f"lab/{pod}",
            not_before=now - dt.timedelta(minutes=5),
            not_after=now + dt.timedelta(days=30),
        )
        (files.dir / NODE_CREDENTIAL).write_text(admission.to_text(node_cred))
        role = plan.pods[pod].node
        if plan.spec.security == "psk" and role is not None and role.role == "member":
            (files.dir / PSK).write_text(secret + "\n")
        if plan.spec.security == "mls":
            credential = authority.issue(
                authority=creator,
                member_identity=f"lab/{pod}",
                member_key=ident.public_bytes,
                vlan_id=vid,
                issued=now - dt.timedelta(minutes=5),
                expires=now + dt.timedelta(days=30),
            )
            (files.dir / CREDENTIAL).write_bytes(credential.encode())
    for pod in plan.node_pods():
        config = node_config(plan, pod, creator_hex=creator.public_hex, peer_ids=peer_ids)
        NodeFiles(pod_dir(state_dir, pod)).config.write_text(config.model_dump_json(indent=2))


def node_config(plan: Plan, pod: str, *, creator_hex: str, peer_ids: dict[str, str]) -> NodeConfig:
    role = plan.pods[pod].node
    if role is None:
        raise NodeError(f"pod {pod} runs no peertap node")
    bootstrap = [
        f"/{_proto(plan)}/{plan.bootstrap_address(pod, e.target)}/tcp/{TRUNK_PORT}"
        f"/p2p/{peer_ids[e.target]}"
        for e in plan.spec.bootstrap
        if e.dialer == pod
    ]
    vlans = []
    private = plan.spec.security == "mls"
    if role.role == "member":
        vlans.append(
            VlanConfig(
                label=plan.spec.vlan_label,
                creator=creator_hex,
                security=plan.spec.security,
                credential=CREDENTIAL if private else None,
                psk_file=PSK if plan.spec.security == "psk" else None,
                # A lab is small and local: presence every 2 s forms its group in seconds.
                member_timeout_s=LAB_MEMBER_TIMEOUT_S if private else 30.0,
                interface=InterfaceConfig(name=TAP_NAME, address=plan.pods[pod].overlay_address),
            )
        )
    return NodeConfig(
        identity=IdentityConfig(key_file="node.key"),
        listen=[f"/ip6/::/tcp/{TRUNK_PORT}" if plan.ipv6 else f"/ip4/0.0.0.0/tcp/{TRUNK_PORT}"],
        bootstrap=bootstrap,
        api=ApiConfig(
            listen=API_LISTEN, vlan_control=plan.spec.vlan_control and role.role == "member"
        ),
        # A pure relay is a member of no VLAN, so "restricted" would let it forward nothing.
        relay=RelayConfig(enabled=True, acl=AclConfig(mode="open"))
        if role.role == "relay"
        else RelayConfig(),
        vlans=vlans,
        trunk=TrunkConfig(datagram=plan.spec.datagram),
        # Every lab node admits only nodes the lab's creator vouched for.
        admission=AdmissionConfig(
            mode="credential", authorities=[creator_hex], credentials=[NODE_CREDENTIAL]
        ),
    )


def _proto(plan: Plan) -> str:
    """The multiaddr protocol of the lab's underlay addresses."""
    return "ip6" if plan.ipv6 else "ip4"


def launch(
    netns_name: str, files: NodeFiles, *, trace: bool, trace_format: str = "jsonl"
) -> subprocess.Popen[bytes]:
    argv = [*node_command(), "--config", str(files.config)]
    if trace:
        argv += ["--trace", str(files.trace_file(trace_format))]
    with files.log.open("ab") as log:
        try:
            return subprocess.Popen(
                ns_argv(netns_name, argv),
                cwd=files.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C meant for the lab tool does not hit the
                # nodes directly; teardown stops them in order.
                start_new_session=True,
            )
        except OSError as err:
            raise NodeError(f"cannot start node in {netns_name}: {err}") from err


def log_tail(files: NodeFiles, *, lines: int = 20) -> str:
    try:
        text = files.log.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
