"""Frame keys of a psk VLAN: one epoch per pre-shared 256-bit secret, rotatable live.

    frame key = BLAKE3-derive("peertap/v2 psk frame key", secret || VLAN-ID)
    MLS-ID, VFT salt, sender keys: derived from the frame key (keys.EpochKeys)

The secret file holds 64 hex characters per line: the first line is the secret
frames are sent with, further lines are older (or upcoming) secrets still accepted.
Rotating without loss: add the new secret as a second line everywhere, then make it
the first, then drop the old one. The file is re-read when it changes; a secret
that disappears from it is still accepted for `grace_s` (frames in flight). An
unreadable or malformed file keeps the keys in use and is reported by `reload`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import blake3

from .keys import EpochKeys

PSK_KEY_CONTEXT = "peertap/v2 psk frame key"
MAX_SECRETS = 8
_LINE = re.compile(r"^[0-9a-fA-F]{64}$")


class PskFileError(ValueError):
    """The secret file is unreadable or not lines of 64 hex characters."""


def read_secrets(path: Path) -> list[bytes]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise PskFileError(f"cannot read psk file {path}: {err}") from err
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    if not lines or len(lines) > MAX_SECRETS or not all(_LINE.match(x) for x in lines):
        raise PskFileError(
            f"psk file {path} must hold 1 to {MAX_SECRETS} lines of 64 hex characters"
        )
    return [bytes.fromhex(x) for x in lines]


def frame_key(secret: bytes, vlan_id: bytes) -> bytes:
    return blake3.blake3(secret + vlan_id, derive_key_context=PSK_KEY_CONTEXT).digest(32)


class PskKeyProvider:
    """KeyProvider for one psk VLAN, fed by its secret file."""

    def __init__(
        self,
        *,
        vlan_id: bytes,
        path: Path,
        grace_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.vlan_id = vlan_id
        self.path = path
        self.grace_s = grace_s
        self._clock = clock
        self._stamp: tuple[int, int] | None = None
        self._current: EpochKeys
        self._accepted: dict[bytes, EpochKeys] = {}
        self._retired: dict[bytes, tuple[EpochKeys, float]] = {}
        self._generation = 0
        self._install(read_secrets(path))
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _install(self, secrets: list[bytes]) -> None:
        keys = [EpochKeys(epoch=0, frame_key=frame_key(s, self.vlan_id)) for s in secrets]
        now = self._clock()
        fresh = {k.mls_id: k for k in keys}
        for mls_id, k in self._accepted.items():
            if mls_id not in fresh:
                self._retired[mls_id] = (k, now + self.grace_s)
        # Keep the per-sender cipher caches of secrets that stay.
        self._accepted = {m: self._accepted.get(m, k) for m, k in fresh.items()}
        first = self._accepted[keys[0].mls_id]
        if getattr(self, "_current", None) is not first:
            self._generation += 1
            first.epoch = self._generation
        self._current = first

    def reload(self) -> bool:
        """Re-read the file if it changed; True if the keys changed. PskFileError if the
        changed file is unusable (the keys in use stay)."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        before = (self._current.mls_id, frozenset(self._accepted))
        self._install(read_secrets(self.path))
        return before != (self._current.mls_id, frozenset(self._accepted))

    def current(self) -> EpochKeys:
        return self._current

    def lookup(self, mls_id: bytes) -> EpochKeys | None:
        keys = self._accepted.get(mls_id)
        if keys is not None:
            return keys
        entry = self._retired.get(mls_id)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._retired[mls_id]
            return None
        return entry[0]

    def accepted(self) -> list[EpochKeys]:
        now = self._clock()
        for mls_id in [m for m, (_, t) in self._retired.items() if t <= now]:
            del self._retired[mls_id]
        others = [k for k in self._accepted.values() if k is not self._current]
        return [self._current, *others, *(k for k, _ in self._retired.values())]
