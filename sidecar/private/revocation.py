"""Revocation lists: the VLAN authority's signed list of member keys no longer admitted.

A list names one private VLAN (by VLAN-ID) and carries a version; a later list
replaces an earlier one only if its version is higher, so a list that revokes more
keys must also name every key the earlier ones did (`peertap authority revoke`
does that when given the previous file). Binary, canonical, signed by the
authority's Ed25519 key (docs/protocol.md, "Revocation lists"):

    [0, 1)         version of the format (1)
    [1, 33)        authority: Ed25519 public key of the signer (the VLAN's creator)
    [33, 49)       VLAN-ID
    [49, 57)       list version (u64, big-endian, >= 1)
    [57, 61)       n: number of revoked keys (u32, big-endian, 0 .. MAX_REVOKED)
    [61, 61+32n)   revoked member keys (Ed25519 public keys), strictly ascending
    [61+32n, +64)  signature: Ed25519 over REVOCATION_CONTEXT || bytes [0, 61+32n)

Files hold it base64-armoured between BEGIN/END PEERTAP REVOCATION LIST lines; the
binary form travels in REVOCATION CONTROL packets on the MVLAN. Because the
authority signs it, any node may forward it. Every error is a RevocationError.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .. import ids
from ..counters import Counters
from ..identity import Identity

log = logging.getLogger("peertap.private")

REVOCATION_CONTEXT = b"peertap revocation list v1\x00"
FORMAT_VERSION = 1
KEY_LEN = 32
SIGNATURE_LEN = 64
# 1,024 keys (33 KiB) fit one CONTROL packet with room to spare; members whose
# credentials simply expire need no entry, so lists stay short.
MAX_REVOKED = 1024
BEGIN = "-----BEGIN PEERTAP REVOCATION LIST-----"
END = "-----END PEERTAP REVOCATION LIST-----"
_HEAD = struct.Struct(">B32s16sQI")
MAX_LIST_BYTES = _HEAD.size + MAX_REVOKED * KEY_LEN + SIGNATURE_LEN


class RevocationError(ValueError):
    """A revocation list is malformed, for another VLAN or authority, or badly signed."""


@dataclass(frozen=True)
class RevocationList:
    """A verified list: `revoked` keys may no longer be members of the VLAN `label`."""

    version: int
    label: str
    vlan_id: bytes
    authority: bytes
    revoked: frozenset[bytes]
    data: bytes  # the signed binary form, as received (forwarded unchanged)


def sign_revocation_list(
    authority: Identity, label: str, member_keys: Iterable[bytes], version: int
) -> bytes:
    """The signed binary list revoking `member_keys` on VLAN (authority, label)."""
    keys = sorted(set(member_keys))
    if any(len(k) != KEY_LEN for k in keys):
        raise RevocationError("a revoked member key must be a 32-byte Ed25519 public key")
    if len(keys) > MAX_REVOKED:
        raise RevocationError(f"{len(keys)} revoked keys are more than {MAX_REVOKED}")
    if not 1 <= version < 2**64:
        raise RevocationError("a revocation list version must be 1 .. 2^64-1")
    vid = ids.vlan_id(authority.public_bytes, label)
    unsigned = _HEAD.pack(FORMAT_VERSION, authority.public_bytes, vid, version, len(keys))
    unsigned += b"".join(keys)
    return unsigned + authority.private_key.sign(REVOCATION_CONTEXT + unsigned)


def decode_unverified(data: bytes) -> tuple[bytes, bytes, int, list[bytes], bytes]:
    """(authority, VLAN-ID, version, keys, signature) of a well-formed list, unverified."""
    if len(data) < _HEAD.size + SIGNATURE_LEN:
        raise RevocationError(f"revocation list of {len(data)} bytes is too short")
    if len(data) > MAX_LIST_BYTES:
        raise RevocationError(f"revocation list of {len(data)} bytes is too long")
    fmt, auth, vid, version, n = _HEAD.unpack_from(data)
    if fmt != FORMAT_VERSION:
        raise RevocationError(f"revocation list format {fmt} is not {FORMAT_VERSION}")
    if n > MAX_REVOKED or len(data) != _HEAD.size + n * KEY_LEN + SIGNATURE_LEN:
        raise RevocationError("revocation list length does not match its key count")
    if version == 0:
        raise RevocationError("revocation list version 0 is not allowed")
    keys = [data[i : i + KEY_LEN] for i in range(_HEAD.size, _HEAD.size + n * KEY_LEN, KEY_LEN)]
    if any(a >= b for a, b in itertools.pairwise(keys)):
        raise RevocationError("revoked keys are not strictly ascending")
    return auth, vid, version, keys, data[-SIGNATURE_LEN:]


def load_revocation_list(data: bytes, authority_public_key: bytes, label: str) -> RevocationList:
    """Verify a list (binary, or the armoured text of a file) for VLAN (authority, label)."""
    if data.lstrip().startswith(BEGIN.encode()):
        data = from_text(data)
    auth, vid, version, keys, signature = decode_unverified(data)
    if auth != authority_public_key:
        raise RevocationError(
            f"revocation list is signed by {auth.hex()[:16]}…, "
            f"the VLAN's authority is {authority_public_key.hex()[:16]}…"
        )
    expected = ids.vlan_id(authority_public_key, label)
    if vid != expected:
        raise RevocationError(f"revocation list is for VLAN {vid.hex()}, not {expected.hex()}")
    try:
        Ed25519PublicKey.from_public_bytes(auth).verify(
            signature, REVOCATION_CONTEXT + data[:-SIGNATURE_LEN]
        )
    except (InvalidSignature, ValueError) as err:
        raise RevocationError("revocation list signature does not verify") from err
    return RevocationList(version, label, vid, auth, frozenset(keys), bytes(data))


def to_text(data: bytes) -> str:
    """The armoured text form of a binary list (what files hold)."""
    body = base64.b64encode(data).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def from_text(text: bytes | str) -> bytes:
    """The binary list inside an armoured text; RevocationError if it is not one."""
    try:
        s = text.decode("ascii") if isinstance(text, bytes) else text
    except UnicodeDecodeError as err:
        raise RevocationError("revocation list file is not ASCII text") from err
    lines = [x.strip() for x in s.strip().splitlines()]
    if len(lines) < 3 or lines[0] != BEGIN or lines[-1] != END:
        raise RevocationError("not a PEERTAP REVOCATION LIST block")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError) as err:
        raise RevocationError("revocation list is not base64") from err


class RevocationFile:
    """A list file the authority (or the operator) may rewrite: re-read when it changes.

    A missing file means no list. A file that does not verify is reported and
    ignored: the node keeps the last good list it had."""

    def __init__(self, path: Path, *, authority: bytes, label: str) -> None:
        self.path = path
        self.authority = authority
        self.label = label
        self._stamp: tuple[int, int] | None = None

    def load(self) -> RevocationList | None:
        """The list in the file now (None if there is no file); RevocationError if bad."""
        try:
            st = self.path.stat()
            data = self.path.read_bytes()
        except FileNotFoundError:
            self._stamp = None
            return None
        except OSError as err:
            raise RevocationError(
                f"cannot read revocation list {self.path}: {err.strerror}"
            ) from err
        self._stamp = (st.st_mtime_ns, st.st_size)
        try:
            return load_revocation_list(data, self.authority, self.label)
        except RevocationError as err:
            raise RevocationError(f"revocation list {self.path}: {err}") from err

    def changed(self) -> RevocationList | None:
        """The file's list if the file changed since the last look and verifies, else None."""
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return None
        try:
            return self.load()
        except RevocationError as err:
            log.error("vlan %s: %s; keeping the last good list", self.label, err)
            self._stamp = stamp
            return None


class RevocationBook:
    """The newest revocation list of one private VLAN that this member knows.

    Lists come from the VLAN's `revocations` file and from REVOCATION CONTROL packets
    of any node; the highest version wins and is never replaced by a lower one. A
    member sends the list it holds when it adopts it and again every `resend_s` (with
    jitter), so a node that missed the flood gets it within that time."""

    def __init__(
        self,
        *,
        authority: bytes,
        label: str,
        counters: Counters,
        resend_s: float,
        source: RevocationFile | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.authority = authority
        self.label = label
        self.counters = counters
        self.resend_s = resend_s
        self.source = source
        self.poll_s = poll_s
        self.current: RevocationList | None = None
        self._next_send = float("inf")
        self._next_poll = float("-inf")

    @property
    def revoked(self) -> frozenset[bytes]:
        return frozenset() if self.current is None else self.current.revoked

    def is_revoked(self, member_key: bytes) -> bool:
        return self.current is not None and member_key in self.current.revoked

    def adopt(self, lst: RevocationList) -> bool:
        """Take `lst` if it is newer than ours; True if it was (send it on at once)."""
        if self.current is not None and lst.version <= self.current.version:
            return False
        added = lst.revoked - self.revoked
        self.current = lst
        self._next_send = float("-inf")
        self.counters.inc("revocation_lists_adopted")
        log.warning(
            "vlan %s: revocation list version %d: %d keys revoked (%d new)",
            self.label,
            lst.version,
            len(lst.revoked),
            len(added),
        )
        return True

    def offer(self, data: bytes) -> bool:
        """A list heard on the MVLAN; True if it is newer than ours and verifies."""
        try:
            lst = load_revocation_list(data, self.authority, self.label)
        except RevocationError as err:
            log.info("vlan %s: refused a revocation list: %s", self.label, err)
            self.counters.drop("revocation_invalid")
            return False
        return self.adopt(lst)

    def poll(self, now: float) -> bool:
        """Look at the file (at most every `poll_s`); True if it brought a newer list."""
        if self.source is None or now < self._next_poll:
            return False
        self._next_poll = now + self.poll_s
        lst = self.source.changed()
        return lst is not None and self.adopt(lst)

    def outgoing(self, now: float) -> bytes | None:
        """The list to send now (just adopted, or the resend interval passed), if any."""
        if self.current is None or now < self._next_send:
            return None
        self._next_send = now + self.resend_s * random.uniform(0.75, 1.25)
        return self.current.data
