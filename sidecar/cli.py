"""The `peertap` command line: run a node, make keys, compute IDs, ask a node's status
and topology.

Subcommands import their heavy dependencies (libp2p, trio, uvicorn) only when
they run, so `peertap vlan-id` and friends answer instantly.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__, config, identity, ids

EXIT_CONFIG = 2
EXIT_RUNTIME = 1


def _cmd_run(args: argparse.Namespace) -> int:
    from . import lean_imports

    if lean_imports.enabled():
        lean_imports.install()  # before anything imports libp2p or pyroute2
    from .runner import run_node

    try:
        cfg, base = config.load(args.config)
    except config.ConfigError as err:
        print(f"peertap: {err}", file=sys.stderr)
        return EXIT_CONFIG
    return run_node(cfg, base_dir=base, trace_path=args.trace, config_path=Path(args.config))


def _cmd_keygen(args: argparse.Namespace) -> int:
    def create() -> identity.Identity:
        ident = identity.generate()
        identity.save(ident, args.out, overwrite=args.force)
        return ident

    return _print_identity(create)


def _cmd_pubkey(args: argparse.Namespace) -> int:
    return _print_identity(lambda: identity.load(args.key))


def _print_identity(get: Callable[[], identity.Identity]) -> int:
    try:
        ident = get()
    except identity.IdentityError as err:
        print(f"peertap: {err}", file=sys.stderr)
        return EXIT_RUNTIME
    print(f"peer-id: {ident.peer_id}")
    print(f"public-key: {ident.public_hex}")
    return 0


def _cmd_vlan_id(args: argparse.Namespace) -> int:
    creator = args.creator.lower()
    if not config.HEX64.match(creator):
        print("peertap: --creator must be 64 hex chars (an Ed25519 public key)", file=sys.stderr)
        return EXIT_CONFIG
    print(ids.vlan_id_hex(creator, args.label))
    return 0


def _fetch_status(args: argparse.Namespace) -> dict[str, Any] | None:
    url = f"http://{args.api}/status"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as resp:
            body = json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as err:
        print(f"peertap: cannot reach the node API at {url}: {err}", file=sys.stderr)
        return None
    if not isinstance(body, dict):
        print(f"peertap: {url} did not answer a status document", file=sys.stderr)
        return None
    return body


def _cmd_status(args: argparse.Namespace) -> int:
    body = _fetch_status(args)
    if body is None:
        return EXIT_RUNTIME
    if args.json:
        print(json.dumps(body, indent=2, sort_keys=True))
    else:
        from .ui import text, view

        sys.stdout.write(text.render(view.build(body)))
    return 0


def _cmd_topology(args: argparse.Namespace) -> int:
    body = _fetch_status(args)
    if body is None:
        return EXIT_RUNTIME
    from .ui import graph

    topo = graph.from_status(body)
    sys.stdout.write(graph.to_dot(topo) if args.dot else graph.to_text(topo))
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    if args.config_cmd == "schema":
        print(json.dumps(config.json_schema(), indent=2, sort_keys=True))
        return 0
    try:
        config.load(args.file)
    except config.ConfigError as err:
        print(f"peertap: {err}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{args.file}: valid")
    return 0


def _cmd_mls_vectors(args: argparse.Namespace) -> int:
    from .mls import conformance

    return int(conformance.main(list(args.files)))


_COMMANDS = frozenset(
    {"run", "keygen", "pubkey", "vlan-id", "status", "topology", "config", "mls-vectors"}
)
"""Subcommands defined here; the others (lab, authority, psk, sim) come with their modules."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; for one of _COMMANDS, without the other modules' subcommands, whose
    imports (the lab's alone pulls in pyroute2 whole and pytest) a node would carry."""
    p = argparse.ArgumentParser(prog="peertap", description="Encrypted Layer-2 overlay node.")
    p.add_argument("--version", action="version", version=f"peertap {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run a node until SIGTERM")
    run.add_argument("--config", required=True, help="node config JSON (see docs/config.md)")
    run.add_argument(
        "--trace",
        help="record every packet sent/received/forwarded: pcapng if FILE ends in .pcapng,"
        " else appended JSON lines",
    )
    run.set_defaults(fn=_cmd_run)

    kg = sub.add_parser("keygen", help="create a node key; prints its peer ID and public key")
    kg.add_argument("--out", required=True, help="key file to write (mode 0600)")
    kg.add_argument("--force", action="store_true", help="overwrite an existing file")
    kg.set_defaults(fn=_cmd_keygen)

    pk = sub.add_parser("pubkey", help="print the peer ID and public key of a key file")
    pk.add_argument("--key", required=True)
    pk.set_defaults(fn=_cmd_pubkey)

    vid = sub.add_parser("vlan-id", help="print the VLAN-ID of (creator, label)")
    vid.add_argument("--creator", required=True, help="64-hex Ed25519 public key")
    vid.add_argument("--label", required=True)
    vid.set_defaults(fn=_cmd_vlan_id)

    st = sub.add_parser("status", help="print a running node's status (--json: raw /status)")
    st.add_argument("--api", default="127.0.0.1:9464", help="HOST:PORT of the node API")
    st.add_argument("--timeout", type=float, default=5.0)
    st.add_argument("--json", action="store_true", help="the raw /status JSON document")
    st.set_defaults(fn=_cmd_status)

    tp = sub.add_parser("topology", help="print the mesh as a running node sees it")
    tp.add_argument("--api", default="127.0.0.1:9464", help="HOST:PORT of the node API")
    tp.add_argument("--timeout", type=float, default=5.0)
    tp.add_argument("--dot", action="store_true", help="Graphviz DOT instead of a text tree")
    tp.set_defaults(fn=_cmd_topology)

    cf = sub.add_parser("config", help="config file helpers")
    cf_sub = cf.add_subparsers(dest="config_cmd", required=True)
    cf_sub.add_parser("schema", help="print the config JSON Schema")
    chk = cf_sub.add_parser("check", help="validate a config file")
    chk.add_argument("file")
    cf.set_defaults(fn=_cmd_config)

    mv = sub.add_parser("mls-vectors", help="run MLS working-group test vector files")
    mv.add_argument("files", nargs="+")
    mv.set_defaults(fn=_cmd_mls_vectors)

    if command in _COMMANDS:
        return p
    from .lab.cli import add_lab_parser

    add_lab_parser(sub)
    from .private.authority_cli import add_authority_parser

    add_authority_parser(sub)
    from .psk_cli import add_psk_parser

    add_psk_parser(sub)
    from .private.sim_cli import add_sim_parser

    add_sim_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    code: int = args.fn(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
