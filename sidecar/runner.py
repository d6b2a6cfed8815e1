"""Process-level running of a node: logging quirks, signals, exit codes.

SIGTERM and SIGINT cancel the node, which then removes its interfaces and
stops its API before the process exits 0.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import trio

from .config import NodeConfig
from .identity import IdentityError
from .node import Node, RunOptions
from .tap.device import TapError

log = logging.getLogger("peertap")


async def _main(node: Node) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node.run)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("received %s; shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def run_node(
    cfg: NodeConfig, *, base_dir: Path, trace_path: str | None, config_path: Path | None = None
) -> int:
    # Importing libp2p turns off propagation on its logger; keep its records in ours.
    import libp2p  # noqa: F401

    lp = logging.getLogger("libp2p")
    lp.propagate = True
    lp.setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("libp2p."):
            logging.getLogger(name).setLevel(logging.NOTSET)
    # The trunk logs failed dials itself, once per attempt and with the reason.
    for name in ("libp2p.transport.tcp.tcp", "libp2p.network.swarm"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        node = Node(
            RunOptions(
                config=cfg, base_dir=base_dir, trace_path=trace_path, config_path=config_path
            )
        )
        trio.run(_main, node)
    except (IdentityError, TapError, OSError) as err:
        log.error("%s", err)
        return 1
    except BaseExceptionGroup as group:
        # Raised inside the node's task group (e.g. a TAP it may not create, as a user
        # without CAP_NET_ADMIN): the same one-line error, no traceback.
        expected, other = group.split((IdentityError, TapError, OSError))
        if other is not None or expected is None:
            raise
        for leaf in _leaves(expected):
            log.error("%s", leaf)
        return 1
    return 0


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for member in group.exceptions:
        out += _leaves(member) if isinstance(member, BaseExceptionGroup) else [member]
    return out
