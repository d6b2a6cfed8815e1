"""Entry point: `python -m peertap.operator [flags]` runs the operator until SIGTERM."""

from __future__ import annotations

import logging
import secrets
import sys

import kopf

from . import options


def main(argv: list[str] | None = None) -> int:
    opts = options.parse(argv)
    options.use(opts)
    # kopf installs the log handler; our loggers propagate to it.
    kopf.configure(verbose=opts.verbose)
    logging.getLogger("peertap").setLevel(logging.DEBUG if opts.verbose else logging.INFO)
    from . import handlers  # noqa: F401  (registers the handlers with kopf)

    if opts.peering:
        # Leader election: every replica serves the webhooks, only the one with the highest
        # priority in the peering object runs the controllers; the others pause. A random
        # priority per process keeps two replicas from ever tying (a tie pauses both).
        kopf.run(
            standalone=False,
            peering_name=opts.peering,
            priority=secrets.randbelow(2**31 - 1) + 1,
            namespaces=list(opts.namespaces),
            clusterwide=not opts.namespaces,
        )
    else:
        kopf.run(
            standalone=True,
            namespaces=list(opts.namespaces),
            clusterwide=not opts.namespaces,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
