"""Datagram session keys: HPKE (RFC 9180) to a one-time key offered over the trunk stream.

The receiver of a direction offers a fresh X25519 public key in an OFFER record; the
sender runs HPKE SetupBaseS to it and exports the session's AES-256-GCM key, sending
`enc` back in a KEY record. Both records travel on the trunk stream, which Noise (or
TLS) authenticated to both peer ids, and the HPKE `info` binds the key to both peer
ids, the session id and the offered key, so a key can only ever be used between the two
peers that agreed on it. The offered private key is used once and then forgotten
(forward secrecy per session); docs/security.md explains why this is as strong as the
trunk's Noise channel.
"""

from __future__ import annotations

from ..mls.errors import MLSError
from ..mls.hpke import AES_256_GCM, DHKEM_X25519, HKDF_SHA256, HPKE

SUITE = HPKE(DHKEM_X25519, HKDF_SHA256, AES_256_GCM)
INFO_LABEL = b"peertap/v2 datagram session\x00"
EXPORT_LABEL = b"peertap/v2 datagram key"
KEY_LEN = 32


class KeyExchangeError(ValueError):
    """An `enc` that does not decapsulate (not a valid X25519 point)."""


def info(sender: bytes, receiver: bytes, session: int, offered: bytes) -> bytes:
    """HPKE info: binds the key to the direction (both binary peer ids) and the session."""
    return b"".join(
        (
            INFO_LABEL,
            len(sender).to_bytes(2, "big"),
            sender,
            len(receiver).to_bytes(2, "big"),
            receiver,
            session.to_bytes(8, "big"),
            offered,
        )
    )


class OfferKey:
    """A receiver's one-time key pair; `open_session` uses it at most once."""

    __slots__ = ("_private", "public")

    def __init__(self) -> None:
        private, public = SUITE.kem.generate_key_pair()
        self._private: bytes | None = private
        self.public = public

    @property
    def used(self) -> bool:
        return self._private is None

    def open_session(self, enc: bytes, *, sender: bytes, receiver: bytes, session: int) -> bytes:
        """The session key for a KEY record from `sender`; the private key is then gone."""
        private = self._private
        if private is None:
            raise KeyExchangeError("this offer was already used")
        self._private = None
        try:
            return SUITE.receive_export(
                enc, private, info(sender, receiver, session, self.public), EXPORT_LABEL, KEY_LEN
            )
        except (MLSError, ValueError) as err:
            raise KeyExchangeError(str(err)) from err


def seal_session(
    offered: bytes, *, sender: bytes, receiver: bytes, session: int
) -> tuple[bytes, bytes]:
    """(enc, session key) for a session to the receiver's offered public key."""
    try:
        return SUITE.send_export(
            offered, info(sender, receiver, session, offered), EXPORT_LABEL, KEY_LEN
        )
    except (MLSError, ValueError) as err:
        raise KeyExchangeError(str(err)) from err
