"""The MLS key schedule (RFC 9420 section 8): epoch secrets, exporter, external init.

    init_secret[n-1] --Extract(commit_secret)--> ExpandWithLabel("joiner", GroupContext[n])
      = joiner_secret --Extract(psk_secret)--> +--> DeriveSecret("welcome") = welcome_secret
                                               +--> ExpandWithLabel("epoch", GroupContext[n])
      = epoch_secret --> DeriveSecret(<label>) for every epoch secret, "init" last.

The epoch secret itself is consumed by the derivation and not kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from .structs import GroupContext
from .suites import CipherSuite

__all__ = [
    "EpochSecrets",
    "GroupContext",
    "derive_epoch",
    "derive_epoch_from_joiner",
    "external_init_receive",
    "external_init_send",
    "external_key_pair",
    "joiner_secret",
    "mls_exporter",
    "welcome_key_nonce",
    "welcome_secret",
]

EXTERNAL_INIT_LABEL = b"MLS 1.0 external init secret"


@dataclass(frozen=True, slots=True)
class EpochSecrets:
    """Everything one epoch derives from its epoch secret (RFC 9420 table 4)."""

    joiner_secret: bytes
    welcome_secret: bytes
    sender_data_secret: bytes
    encryption_secret: bytes
    exporter_secret: bytes
    epoch_authenticator: bytes
    external_secret: bytes
    confirmation_key: bytes
    membership_key: bytes
    resumption_psk: bytes
    init_secret: bytes

    def exporter(
        self, suite: CipherSuite, label: str | bytes, context: bytes, length: int
    ) -> bytes:
        return mls_exporter(suite, self.exporter_secret, label, context, length)

    def external_key_pair(self, suite: CipherSuite) -> tuple[bytes, bytes]:
        return external_key_pair(suite, self.external_secret)


def joiner_secret(
    suite: CipherSuite, *, init_secret: bytes, commit_secret: bytes, group_context: GroupContext
) -> bytes:
    prk = suite.kdf_extract(init_secret, commit_secret)
    return suite.expand_with_label(prk, "joiner", group_context.encode(), suite.nh)


def _member_prk(suite: CipherSuite, joiner: bytes, psk_secret: bytes | None) -> bytes:
    return suite.kdf_extract(joiner, psk_secret if psk_secret is not None else bytes(suite.nh))


def welcome_secret(suite: CipherSuite, joiner: bytes, psk_secret: bytes | None) -> bytes:
    return suite.derive_secret(_member_prk(suite, joiner, psk_secret), "welcome")


def welcome_key_nonce(suite: CipherSuite, welcome: bytes) -> tuple[bytes, bytes]:
    """(welcome_key, welcome_nonce) that protect Welcome.encrypted_group_info."""
    return (
        suite.expand_with_label(welcome, "key", b"", suite.nk),
        suite.expand_with_label(welcome, "nonce", b"", suite.nn),
    )


def derive_epoch_from_joiner(
    suite: CipherSuite,
    *,
    joiner_secret: bytes,
    psk_secret: bytes | None,
    group_context: GroupContext,
) -> EpochSecrets:
    """Epoch secrets from a joiner secret (the Welcome path); psk_secret None means no PSKs."""
    member_prk = _member_prk(suite, joiner_secret, psk_secret)
    epoch_secret = suite.expand_with_label(member_prk, "epoch", group_context.encode(), suite.nh)

    def derive(label: str) -> bytes:
        return suite.derive_secret(epoch_secret, label)

    return EpochSecrets(
        joiner_secret=joiner_secret,
        welcome_secret=suite.derive_secret(member_prk, "welcome"),
        sender_data_secret=derive("sender data"),
        encryption_secret=derive("encryption"),
        exporter_secret=derive("exporter"),
        epoch_authenticator=derive("authentication"),
        external_secret=derive("external"),
        confirmation_key=derive("confirm"),
        membership_key=derive("membership"),
        resumption_psk=derive("resumption"),
        init_secret=derive("init"),
    )


def derive_epoch(
    suite: CipherSuite,
    *,
    init_secret: bytes,
    commit_secret: bytes | None,
    psk_secret: bytes | None,
    group_context: GroupContext,
) -> EpochSecrets:
    """Epoch secrets from the previous init secret (the Commit path).

    ``commit_secret`` None means a Commit without a path (all-zero commit secret).
    """
    commit = commit_secret if commit_secret is not None else bytes(suite.nh)
    joiner = joiner_secret(
        suite, init_secret=init_secret, commit_secret=commit, group_context=group_context
    )
    return derive_epoch_from_joiner(
        suite, joiner_secret=joiner, psk_secret=psk_secret, group_context=group_context
    )


def mls_exporter(
    suite: CipherSuite, exporter_secret: bytes, label: str | bytes, context: bytes, length: int
) -> bytes:
    """MLS-Exporter(Label, Context, Length)."""
    secret = suite.derive_secret(exporter_secret, label)
    return suite.expand_with_label(secret, "exported", suite.hash(context), length)


def external_key_pair(suite: CipherSuite, external_secret: bytes) -> tuple[bytes, bytes]:
    """(external_priv, external_pub) = KEM.DeriveKeyPair(external_secret)."""
    return suite.derive_key_pair(external_secret)


def external_init_send(suite: CipherSuite, external_pub: bytes) -> tuple[bytes, bytes]:
    """Joiner side of an external commit: (kem_output, init_secret)."""
    return suite.hpke_suite.send_export(external_pub, b"", EXTERNAL_INIT_LABEL, suite.nh)


def external_init_receive(suite: CipherSuite, external_priv: bytes, kem_output: bytes) -> bytes:
    """Member side of an ExternalInit proposal: the init_secret; DecryptError if unusable."""
    return suite.hpke_suite.receive_export(
        kem_output, external_priv, b"", EXTERNAL_INIT_LABEL, suite.nh
    )
