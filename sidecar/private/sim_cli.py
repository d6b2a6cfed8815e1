"""`peertap sim private`: the command line of the private VLAN simulator (sim.py)."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from .lifecycle import PrivateSettings
from .sim import Sim, default_settings


def add_sim_parser(sub: Any) -> None:
    sim = sub.add_parser("sim", help="simulators of the node's protocols")
    sim_sub = sim.add_subparsers(dest="sim_cmd", required=True)
    p = sim_sub.add_parser(
        "private",
        help="N members' real private-VLAN code in one process over an in-memory mesh "
        "(virtual clock); prints convergence, message sizes and control traffic",
    )
    p.add_argument("--members", type=int, required=True)
    p.add_argument("--relays", type=int, default=1, help="relays the members hang off (meshed)")
    p.add_argument("--churn", type=float, default=0.0, help="members stopped or started per minute")
    p.add_argument("--churn-for", type=float, default=180.0, help="seconds of churn")
    p.add_argument("--steady", type=float, default=None, help="seconds of the steady window")
    p.add_argument("--mac-probes", action="store_true", help="members also probe their MACs")
    p.add_argument("--member-timeout", type=float, default=None, help="member_timeout_s")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(fn=_cmd_sim_private)


def _cmd_sim_private(args: argparse.Namespace) -> int:
    logging.getLogger("peertap").setLevel(logging.WARNING)
    settings = default_settings()
    if args.member_timeout is not None:
        settings = PrivateSettings(
            rekey_interval_s=settings.rekey_interval_s,
            member_timeout_s=args.member_timeout,
            epoch_grace_s=settings.epoch_grace_s,
        )
    report = Sim(
        members=args.members,
        relays=args.relays,
        churn_per_min=args.churn,
        churn_s=args.churn_for,
        steady_s=args.steady,
        settings=settings,
        mac_probes=args.mac_probes,
        seed=args.seed,
    ).run()
    if args.json:
        print(json.dumps(report.__dict__, indent=1))
    else:
        print("\n".join(report.lines()))
    return 0 if report.distinct_mls_ids == 1 and report.converged == report.members else 1
