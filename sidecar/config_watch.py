"""Following a running node's config file: which changes apply at once, which wait.

In Kubernetes the operator rewrites a member's config (a projected ConfigMap) when,
for example, its MVLAN's relays get addresses after the member started. A node re-reads
its file when the bytes change: a new `bootstrap` list applies at once (new peers are
dialed, removed ones are no longer redialed); any other change is reported as needing a
restart, once per version of the file. A file that no longer parses or validates changes
nothing: the node keeps running on what it has, and says why.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config
from .config import NodeConfig

log = logging.getLogger(__name__)

LIVE_FIELDS = frozenset({"bootstrap"})
"""Top-level fields a running node takes from a changed file."""


@dataclass(frozen=True)
class ConfigChange:
    """A changed, valid config file: the new config and what differs from the running one."""

    config: NodeConfig
    live: frozenset[str]  # changed fields applied at once (LIVE_FIELDS)
    restart: frozenset[str]  # changed fields that take effect at the next start


class ConfigWatch:
    """Notices when the bytes of a config file change and validates the new version."""

    def __init__(self, path: Path, running: NodeConfig) -> None:
        self.path = path
        self.running = running
        self._digest = self._read_digest()

    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except OSError:
            return None

    def _read_digest(self) -> bytes | None:
        data = self._read()
        return None if data is None else hashlib.blake2b(data, digest_size=16).digest()

    def poll(self) -> ConfigChange | None:
        """The change since the last poll, or None (unchanged, unreadable for now, or the
        same content rewritten). Raises config.ConfigError once per invalid version."""
        data = self._read()
        if data is None:
            # Mid-update (a projected volume swaps a symlink) or gone: keep what we have.
            return None
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if digest == self._digest:
            return None
        self._digest = digest
        new, _ = config.load(self.path)  # raises ConfigError: reported once per version
        old_fields = _fields(self.running)
        new_fields = _fields(new)
        changed = frozenset(k for k in old_fields.keys() | new_fields.keys()
                            if old_fields.get(k) != new_fields.get(k))  # fmt: skip
        live = changed & LIVE_FIELDS
        restart = changed - LIVE_FIELDS
        # Later comparisons are against what now runs: live fields taken, others not.
        merged = self.running.model_copy(update={k: getattr(new, k) for k in live})
        self.running = merged
        if not changed:
            return None
        return ConfigChange(config=new, live=live, restart=restart)


def _fields(cfg: NodeConfig) -> dict[str, Any]:
    dumped: dict[str, Any] = cfg.model_dump(mode="json")
    return dumped
