"""Entry point: `python -m peertap.operator [flags]` runs the operator until SIGTERM."""

from __future__ import annotations

import logging
import sys

import kopf

from . import options


def main(argv: list[str] | None = None) -> int:
    opts = options.parse(argv)
    options.use(opts)
    logging.basicConfig(
        level=logging.DEBUG if opts.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    kopf.configure(verbose=opts.verbose)
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
