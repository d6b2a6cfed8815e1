"""`peertap psk --out FILE`: make a pre-shared secret file for `security: "psk"` VLANs.

    peertap psk --out lab.psk                 a new 256-bit secret (mode 0600)
    peertap psk --out lab.psk --rotate        prepend a new secret, keep the old ones
                                              (accepted while the rotation rolls out)

See docs/config.md, "psk VLANs", for rolling a new secret out without loss.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .crypto.psk_keys import MAX_SECRETS, PskFileError, read_secrets

EXIT_RUNTIME = 1


def _psk(args: argparse.Namespace) -> int:
    out = Path(args.out)
    lines = [os.urandom(32).hex()]
    if args.rotate:
        try:
            lines += [s.hex() for s in read_secrets(out)][: MAX_SECRETS - 1]
        except PskFileError as err:
            print(f"peertap: {err}", file=sys.stderr)
            return EXIT_RUNTIME
    elif out.exists() and not args.force:
        print(f"peertap: {out} exists; use --rotate or --force", file=sys.stderr)
        return EXIT_RUNTIME
    tmp = out.with_name(out.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        # Nodes re-read the file when it changes: replace it whole, never half-written.
        tmp.replace(out)
    except OSError as err:
        print(f"peertap: cannot write {out}: {err.strerror}", file=sys.stderr)
        return EXIT_RUNTIME
    print(f"secrets: {len(lines)} (the first is sent with)")
    return 0


def add_psk_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("psk", help="make or rotate a pre-shared secret file")
    p.add_argument("--out", required=True, help="secret file to write (mode 0600)")
    p.add_argument("--rotate", action="store_true", help="prepend a new secret to the file")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(fn=_psk)
