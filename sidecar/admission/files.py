"""This node's own node credentials: files read at start and re-read when they change.

An unreadable or malformed file stops the node at start (a clear error beats a node
that nobody admits); later, a bad rewrite keeps the credential in use and is logged,
so a renewal in progress never takes a working node off the mesh.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..private import authority as creds
from .credential import NodeCredential, read_file

log = logging.getLogger("peertap.admission")


class CredentialFileError(OSError):
    """A node credential file is missing, unreadable or malformed."""


class OwnCredentials:
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._stamps: dict[Path, tuple[int, int] | None] = {}
        self._creds: dict[Path, NodeCredential] = {}

    @property
    def encoded(self) -> tuple[bytes, ...]:
        return tuple(self._creds[p].encode() for p in self.paths if p in self._creds)

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def load(self) -> None:
        for path in self.paths:
            self._stamps[path] = self._stamp(path)
            try:
                self._creds[path] = read_file(path)
            except (OSError, creds.CredentialError) as err:
                raise CredentialFileError(f"node credential {path}: {err}") from err

    def reload(self) -> bool:
        """Re-read changed files; True if any credential changed."""
        changed = False
        for path in self.paths:
            stamp = self._stamp(path)
            if stamp == self._stamps.get(path):
                continue
            self._stamps[path] = stamp
            try:
                fresh = read_file(path)
            except (OSError, creds.CredentialError) as err:
                log.warning("node credential %s: keeping the one in use: %s", path, err)
                continue
            if fresh != self._creds.get(path):
                self._creds[path] = fresh
                changed = True
                log.info("node credential %s renewed (%s)", path, fresh.identity)
        return changed
