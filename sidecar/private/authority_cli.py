"""`peertap authority ...`: make a VLAN authority key and issue member credentials.

    peertap authority keygen --out authority.key
        prints the authority public key: the `creator` of the VLANs it admits to
    peertap authority issue --key authority.key --identity NAME --member-key PUB \\
        --label LABEL --expires 30d --out member.cred
        PUB is the hex public key `peertap keygen` printed for the member's node
    peertap authority issue-node --key authority.key --identity NAME --node-key PUB \\
        --expires 24h --out node.cred
        a node credential: nodes whose `admission.authorities` list this authority
        accept the node as a trunk peer
    peertap authority revoke --key authority.key --label LABEL --member-key PUB \
        [--member-key PUB ...] --out revoked.list
        a signed revocation list; if --out already holds a list of this VLAN, the new
        one names its keys too and has the next version (run it again to revoke more)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from .. import admission, identity, ids
from . import authority, revocation

EXIT_USAGE = 2
EXIT_RUNTIME = 1


def _keygen(args: argparse.Namespace) -> int:
    ident = identity.generate()
    try:
        identity.save(ident, args.out, overwrite=args.force)
    except identity.IdentityError as err:
        print(f"peertap: {err}", file=sys.stderr)
        return EXIT_RUNTIME
    print(f"creator: {ident.public_hex}")
    return 0


class _UsageError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _signing_inputs(
    key_file: str, key_hex: str, expires: str
) -> tuple[identity.Identity, bytes, dt.timedelta]:
    """The authority key, a 32-byte public key from hex and a lifetime, or _UsageError."""
    try:
        key = identity.load(key_file)
    except identity.IdentityError as err:
        raise _UsageError(str(err), EXIT_RUNTIME) from err
    try:
        public = bytes.fromhex(key_hex)
        if len(public) != 32:
            raise ValueError("not 32 bytes")
        lifetime = authority.parse_duration(expires)
    except ValueError as err:
        raise _UsageError(f"bad key or --expires: {err}", EXIT_USAGE) from err
    return key, public, lifetime


def _issue(args: argparse.Namespace) -> int:
    try:
        key, member_key, lifetime = _signing_inputs(args.key, args.member_key, args.expires)
    except _UsageError as err:
        print(f"peertap: {err}", file=sys.stderr)
        return err.code
    now = dt.datetime.now(dt.UTC)
    try:
        cred = authority.issue(
            authority=key,
            member_identity=args.identity,
            member_key=member_key,
            vlan_id=ids.vlan_id(key.public_bytes, args.label),
            issued=now,
            expires=now + lifetime,
        )
    except ValueError as err:
        print(f"peertap: bad --identity: {err}", file=sys.stderr)
        return EXIT_USAGE
    if not _write(Path(args.out), cred.encode() + b"\n"):
        return EXIT_RUNTIME
    print(f"vlan-id: {cred.vlan_id.hex()}")
    print(f"expires: {authority.format_time(cred.expires)}")
    return 0


def _issue_node(args: argparse.Namespace) -> int:
    try:
        key, node_key, lifetime = _signing_inputs(args.key, args.node_key, args.expires)
        now = dt.datetime.now(dt.UTC)
        cred = admission.issue(
            authority=key,
            node_key=node_key,
            identity=args.identity,
            not_before=now,
            not_after=now + lifetime,
        )
    except _UsageError as err:
        print(f"peertap: {err}", file=sys.stderr)
        return err.code
    except ValueError as err:
        print(f"peertap: bad --identity: {err}", file=sys.stderr)
        return EXIT_USAGE
    if not _write(Path(args.out), admission.to_text(cred).encode()):
        return EXIT_RUNTIME
    print(f"peer-id: {cred.peer_id}")
    print(f"expires: {dt.datetime.fromtimestamp(cred.not_after, dt.UTC):%Y-%m-%dT%H:%M:%SZ}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        key = identity.load(args.key)
    except identity.IdentityError as err:
        print(f"peertap: {err}", file=sys.stderr)
        return EXIT_RUNTIME
    try:
        keys = {bytes.fromhex(k) for k in args.member_key}
    except ValueError as err:
        print(f"peertap: bad --member-key: {err}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    earlier: frozenset[bytes] = frozenset()
    version = 1
    if out.exists():
        # Revoking more keys later: the next version names the earlier keys too.
        try:
            prev = revocation.RevocationFile(out, authority=key.public_bytes, label=args.label)
            lst = prev.load()
        except revocation.RevocationError as err:
            print(f"peertap: {err} (remove it or choose another --out)", file=sys.stderr)
            return EXIT_RUNTIME
        if lst is not None:
            earlier, version = lst.revoked, lst.version + 1
    if args.version is not None:
        if args.version < version:
            print(f"peertap: --version must be at least {version}", file=sys.stderr)
            return EXIT_USAGE
        version = args.version
    try:
        data = revocation.sign_revocation_list(key, args.label, earlier | keys, version)
    except revocation.RevocationError as err:
        print(f"peertap: bad --member-key: {err}", file=sys.stderr)
        return EXIT_USAGE
    if not _write(out, revocation.to_text(data).encode()):
        return EXIT_RUNTIME
    print(f"vlan-id: {ids.vlan_id(key.public_bytes, args.label).hex()}")
    print(f"version: {version}")
    print(f"revoked: {len(earlier | keys)}")
    return 0


def _write(out: Path, data: bytes) -> bool:
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as err:
        print(f"peertap: cannot write {out}: {err.strerror}", file=sys.stderr)
        return False
    return True


def add_authority_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    au = subparsers.add_parser("authority", help="VLAN authority keys and member credentials")
    sub = au.add_subparsers(dest="authority_cmd", required=True)

    kg = sub.add_parser("keygen", help="create an authority key; prints its public key (creator)")
    kg.add_argument("--out", required=True, help="key file to write (mode 0600)")
    kg.add_argument("--force", action="store_true", help="overwrite an existing file")
    kg.set_defaults(fn=_keygen)

    iss = sub.add_parser("issue", help="sign a member credential for one VLAN")
    iss.add_argument("--key", required=True, help="authority key file")
    iss.add_argument("--identity", required=True, help="member name, e.g. namespace/pod")
    iss.add_argument("--member-key", required=True, help="member node public key (64 hex)")
    iss.add_argument("--label", required=True, help="VLAN label (VLAN-ID = creator + label)")
    iss.add_argument("--expires", default="30d", help="lifetime: 90s, 15m, 24h, 30d")
    iss.add_argument("--out", required=True, help="credential file to write")
    iss.set_defaults(fn=_issue)

    node = sub.add_parser("issue-node", help="sign a node credential (trunk admission)")
    node.add_argument("--key", required=True, help="authority key file")
    node.add_argument("--identity", required=True, help="node name, e.g. cluster/ns/pod")
    node.add_argument("--node-key", required=True, help="node public key (64 hex)")
    node.add_argument("--expires", default="24h", help="lifetime: 90s, 15m, 24h, 30d")
    node.add_argument("--out", required=True, help="credential file to write")
    node.set_defaults(fn=_issue_node)

    rev = sub.add_parser("revoke", help="sign a revocation list for one VLAN (adds to --out)")
    rev.add_argument("--key", required=True, help="authority key file")
    rev.add_argument("--label", required=True, help="VLAN label (VLAN-ID = creator + label)")
    rev.add_argument(
        "--member-key",
        required=True,
        action="append",
        help="member node public key (64 hex) to revoke; repeat for several",
    )
    rev.add_argument(
        "--version", type=int, help="list version (default: the previous one in --out + 1, or 1)"
    )
    rev.add_argument("--out", required=True, help="list file to write (or extend)")
    rev.set_defaults(fn=_revoke)
