"""Entry point: `python -m peertap.operator [flags]` runs the operator until SIGTERM."""

from __future__ import annotations

import logging
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

    # One replica runs the controllers; standalone mode needs no peering CRDs.
    kopf.run(
        standalone=True,
        namespaces=list(opts.namespaces),
        clusterwide=not opts.namespaces,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
