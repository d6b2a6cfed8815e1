"""Node identity: the Ed25519 key file, its public key and its libp2p peer ID.

The same key is the node's libp2p identity (trunk authentication) and the
public key that MAC derivation and credentials refer to. Key files are PEM
PKCS#8, written with mode 0600.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class IdentityError(Exception):
    """A key file is missing, unreadable or not an Ed25519 private key."""


@dataclass(frozen=True)
class Identity:
    private_key: Ed25519PrivateKey

    @property
    def seed(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @property
    def public_bytes(self) -> bytes:
        return public_bytes(self.private_key.public_key())

    @property
    def public_hex(self) -> str:
        return self.public_bytes.hex()

    @property
    def peer_id(self) -> str:
        return peer_id_from_public(self.public_bytes)


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def peer_id_from_public(public: bytes) -> str:
    """The libp2p peer ID (base58 identity multihash) of a raw Ed25519 public key."""
    from libp2p.crypto.ed25519 import Ed25519PublicKey as P2PPublic
    from libp2p.peer.id import ID

    return str(ID.from_pubkey(P2PPublic.from_bytes(public)).pretty())


def public_from_peer_id(peer: str) -> bytes:
    """The raw Ed25519 public key inside a peer ID; ValueError if it holds none."""
    from libp2p.peer.id import ID

    try:
        key = ID.from_base58(peer).extract_public_key()
    except Exception as err:  # base58 and multihash errors of several types
        raise ValueError(f"{peer!r} is not a peer ID") from err
    if key is None:
        raise ValueError(f"peer ID {peer} does not embed its public key")
    data = key.to_bytes()
    if len(data) != 32:
        raise ValueError(f"peer ID {peer} is not an Ed25519 identity")
    return bytes(data)


def generate() -> Identity:
    return Identity(Ed25519PrivateKey.generate())


def to_pem(identity: Identity) -> bytes:
    return identity.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def from_pem(data: bytes, *, source: str = "key") -> Identity:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise IdentityError(f"{source}: not a PEM private key") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"{source}: not an Ed25519 key ({type(key).__name__})")
    return Identity(key)


def save(identity: Identity, path: str | Path, *, overwrite: bool = False) -> None:
    p = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(p, flags, 0o600)
    except FileExistsError as err:
        raise IdentityError(f"{p} exists; refusing to overwrite a key") from err
    except OSError as err:
        raise IdentityError(f"cannot write {p}: {err.strerror}") from err
    with os.fdopen(fd, "wb") as f:
        f.write(to_pem(identity))


def load(path: str | Path) -> Identity:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise IdentityError(f"cannot read key file {p}: {err.strerror}") from err
    return from_pem(data, source=str(p))
