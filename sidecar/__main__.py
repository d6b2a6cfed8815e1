"""`python -m peertap.sidecar` is the `peertap` command."""

import sys

from .cli import main

sys.exit(main())
