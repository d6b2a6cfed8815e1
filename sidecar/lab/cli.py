"""`peertap lab up|down|exec|status`: the lab from the command line.

`up` builds a lab, starts its nodes and returns, leaving them running; the
state directory (default ./lab-state) records everything, so `exec`, `status`
and `down` work from later commands, and `down` also after a crashed `up`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .errors import LabError, NodeApiUnreachable
from .lab import Lab
from .spec import LabSpec
from .topologies import IPV6_UNDERLAY, NAMES, topology

DEFAULT_STATE = "./lab-state"


def add_lab_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `lab` with its subcommands to an argparse subparsers object."""
    lab = subparsers.add_parser("lab", help="local lab of network namespaces running peertap")
    lab.set_defaults(fn=run_lab_command)
    sub = lab.add_subparsers(dest="lab_command", required=True)

    up = sub.add_parser("up", help="build a lab and start its nodes")
    up.add_argument("--topology", choices=NAMES, default="relay")
    up.add_argument("--spec", help="JSON lab spec file (instead of --topology)")
    up.add_argument("--members", type=int, default=3, help="members of a star")
    up.add_argument("--routed", action="store_true", help="relay topology: r forwards IP")
    up.add_argument(
        "--ipv6",
        action="store_true",
        help=f"a topology on an IPv6-only underlay: /64 links cut from {IPV6_UNDERLAY} (a "
        "--spec sets underlay_base itself)",
    )
    up.add_argument(
        "--security",
        choices=("public", "psk", "mls"),
        help="the lab VLAN's security (default public; psk: a pre-shared secret; "
        "mls: a private VLAN with credentials)",
    )
    up.add_argument(
        "--vlan-control",
        action="store_true",
        help="members' web UIs may leave and join the lab VLAN (api.vlan_control)",
    )
    up.add_argument(
        "--trace-format",
        choices=("jsonl", "pcapng"),
        help="nodes' trace files: JSON lines (default) or pcapng for Wireshark",
    )
    up.add_argument("--state", default=DEFAULT_STATE, help="state directory")
    up.add_argument("--prefix", help="name prefix (default pt-<4 hex>-)")
    up.add_argument("--no-nodes", action="store_true", help="build the pods, start no peertap")
    up.add_argument("--wait", type=float, default=30.0, help="seconds to wait for /readyz")

    down = sub.add_parser("down", help="tear down the lab recorded in the state directory")
    down.add_argument("--state", default=DEFAULT_STATE)

    exe = sub.add_parser("exec", help="run a command inside a pod: lab exec POD -- CMD...")
    exe.add_argument("--state", default=DEFAULT_STATE)
    exe.add_argument("pod")
    exe.add_argument("cmd", nargs=argparse.REMAINDER)

    status = sub.add_parser("status", help="pods, addresses and node health")
    status.add_argument("--state", default=DEFAULT_STATE)
    return lab  # type: ignore[no-any-return]


def run_lab_command(args: argparse.Namespace) -> int:
    try:
        if args.lab_command == "up":
            return _up(args)
        if args.lab_command == "down":
            Lab.teardown(args.state)
            print(f"lab in {args.state} torn down")
            return 0
        if args.lab_command == "exec":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                print("lab exec: no command given (lab exec POD -- CMD...)", file=sys.stderr)
                return 2
            return Lab.attach(args.state).exec(args.pod, cmd, check=False).returncode
        if args.lab_command == "status":
            _print_lab(Lab.attach(args.state), health=True)
            return 0
    except LabError as err:
        print(f"lab {args.lab_command}: {err}", file=sys.stderr)
        return 1
    raise ValueError(f"unknown lab command {args.lab_command!r}")


def _spec(args: argparse.Namespace) -> LabSpec:
    if args.spec:
        with open(args.spec) as f:
            return LabSpec.model_validate_json(f.read())
    underlay = IPV6_UNDERLAY if args.ipv6 else None
    if args.topology == "star":
        spec = topology("star", members=args.members, underlay=underlay)
    elif args.topology == "relay":
        spec = topology("relay", routed=args.routed, underlay=underlay)
    else:
        spec = topology(args.topology, underlay=underlay)
    if args.security:
        spec = spec.model_copy(update={"security": args.security})
    if args.trace_format:
        spec = spec.model_copy(update={"trace_format": args.trace_format})
    if args.vlan_control:
        spec = spec.model_copy(update={"vlan_control": True})
    return spec


def _up(args: argparse.Namespace) -> int:
    lab = Lab.up(
        _spec(args), state_dir=args.state, prefix=args.prefix, start_nodes=not args.no_nodes
    )
    if not args.no_nodes and args.wait > 0:
        try:
            lab.wait_ready(args.wait)
        except LabError:
            lab.down()
            raise
    _print_lab(lab, health=False)
    print(f"\nrun in a pod:  peertap lab exec --state {args.state} POD -- CMD...")
    print(f"  e.g.         peertap lab exec --state {args.state} {lab.pods[0]} -- ip addr")
    print(f"tear down:     peertap lab down --state {args.state}")
    return 0


def _print_lab(lab: Lab, *, health: bool) -> None:
    print(f"lab {lab.prefix}  state {lab.state_dir}")
    print(f"{'pod':<6} {'netns':<14} {'role':<7} {'overlay':<12} {'node':<18} underlay")
    for name in lab.pods:
        pod = lab.plan.pods[name]
        role = pod.node.role if pod.node else ("router" if pod.ip_forward else "-")
        overlay = lab.overlay_address(name) if pod.overlay_address else "-"
        node = "-"
        if pod.node is not None:
            pid = lab.node_pid(name)
            node = "stopped" if pid is None else f"pid {pid}"
            if health and pid is not None:
                node += " " + _readiness(lab, name)
        underlay = ", ".join(
            f"{link.address(name)} (to {link.peer(name)})" for link in lab.plan.links_of(name)
        )
        print(f"{name:<6} {pod.netns:<14} {role:<7} {overlay:<12} {node:<18} {underlay}")
    with_nodes = [name for name in lab.pods if lab.plan.pods[name].node is not None]
    if with_nodes:
        print("\nweb UI of each node (its API listens on the pod's own loopback):")
        for name in with_nodes:
            print(f"  {name:<6} {lab.ui_url(name)}  in netns {lab.netns(name)}")


def _readiness(lab: Lab, pod: str) -> str:
    try:
        return "ready" if lab.http_get(pod, "/readyz", timeout=2.0).status == 200 else "not-ready"
    except NodeApiUnreachable:
        return "no-api"
