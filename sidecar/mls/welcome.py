"""KeyPackages and Welcome messages (RFC 9420 sections 10, 12.4.3.1).

``make_key_package`` creates a KeyPackage with its private keys; ``build_welcome``
encrypts a GroupInfo and GroupSecrets to new members; ``open_welcome`` is the
joiner's side up to the decrypted GroupInfo (group state is built in ``group``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from . import key_schedule, psk
from .errors import ValidationError
from .psk import PreSharedKeyID, PSKType, ResumptionPSKUsage
from .structs import (
    Capabilities,
    Credential,
    CredentialType,
    EncryptedGroupSecrets,
    Extension,
    GroupInfo,
    GroupSecrets,
    HPKECiphertext,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    ProtocolVersion,
    Welcome,
)
from .suites import CipherSuite, get_suite

__all__ = [
    "DEFAULT_LIFETIME",
    "KeyPackageBundle",
    "PskLookup",
    "build_welcome",
    "default_capabilities",
    "make_key_package",
    "open_welcome",
    "resolve_psks",
]

DEFAULT_LIFETIME = 90 * 24 * 3600
"""Default KeyPackage lifetime in seconds (the application's maximum should be no less)."""

# Returns the PSK value for an id, or None when it is not available.
PskLookup = Callable[[PreSharedKeyID], bytes | None]


@dataclass(frozen=True)
class KeyPackageBundle:
    """A KeyPackage and the private keys that go with it."""

    key_package: KeyPackage
    init_private: bytes
    encryption_private: bytes
    signature_private: bytes


def default_capabilities(suite_id: int) -> Capabilities:
    return Capabilities(
        versions=(ProtocolVersion.MLS10,),
        cipher_suites=(suite_id,),
        extensions=(),
        proposals=(),
        credentials=(CredentialType.BASIC, CredentialType.X509),
    )


def make_key_package(
    suite_id: int,
    *,
    signature_private: bytes,
    identity: bytes | None = None,
    credential: Credential | None = None,
    capabilities: Capabilities | None = None,
    leaf_extensions: Sequence[Extension] = (),
    extensions: Sequence[Extension] = (),
    lifetime: Lifetime | None = None,
    now: int | None = None,
) -> KeyPackageBundle:
    """A fresh KeyPackage (new init and leaf HPKE keys) signed with ``signature_private``."""
    suite = get_suite(suite_id)
    if credential is None:
        if identity is None:
            raise ValueError("make_key_package needs an identity or a credential")
        credential = Credential.basic(identity)
    if lifetime is None:
        start = int(time.time()) if now is None else now
        lifetime = Lifetime(max(0, start - 3600), start + DEFAULT_LIFETIME)
    init_private, init_public = suite.generate_hpke_key_pair()
    encryption_private, encryption_public = suite.generate_hpke_key_pair()
    leaf = LeafNode(
        encryption_key=encryption_public,
        signature_key=suite.signature_public_from_private(signature_private),
        credential=credential,
        capabilities=capabilities or default_capabilities(suite_id),
        leaf_node_source=LeafNodeSource.KEY_PACKAGE,
        lifetime=lifetime,
        extensions=tuple(leaf_extensions),
    ).signed(suite, signature_private)
    kp = KeyPackage(ProtocolVersion.MLS10, suite_id, init_public, leaf, tuple(extensions)).signed(
        suite, signature_private
    )
    return KeyPackageBundle(kp, init_private, encryption_private, signature_private)


def resolve_psks(
    suite: CipherSuite, ids: Iterable[PreSharedKeyID], lookup: PskLookup
) -> bytes | None:
    """psk_secret for ``ids`` (None when there are none); ValidationError if one is missing."""
    pairs = []
    for psk_id in ids:
        value = lookup(psk_id)
        if value is None:
            raise ValidationError("a PSK named by the message is not available")
        pairs.append((psk_id, value))
    return psk.psk_secret(suite, pairs) if pairs else None


def build_welcome(
    suite: CipherSuite,
    group_info: GroupInfo,
    *,
    joiner_secret: bytes,
    psk_secret: bytes | None,
    psks: Sequence[PreSharedKeyID],
    new_members: Sequence[tuple[KeyPackage, bytes | None]],
) -> Welcome:
    """A Welcome for ``new_members`` ((KeyPackage, path secret or None) each)."""
    welcome_secret = key_schedule.welcome_secret(suite, joiner_secret, psk_secret)
    key, nonce = key_schedule.welcome_key_nonce(suite, welcome_secret)
    encrypted_group_info = suite.aead_seal(key, nonce, b"", group_info.encode())
    secrets = []
    for kp, path_secret in new_members:
        group_secrets = GroupSecrets(joiner_secret, path_secret, tuple(psks)).encode()
        kem_output, ct = suite.encrypt_with_label(
            kp.init_key, "Welcome", encrypted_group_info, group_secrets
        )
        secrets.append(EncryptedGroupSecrets(kp.ref(suite), HPKECiphertext(kem_output, ct)))
    return Welcome(suite.id, tuple(secrets), encrypted_group_info)


def open_welcome(
    welcome: Welcome, bundle: KeyPackageBundle, lookup: PskLookup
) -> tuple[CipherSuite, GroupSecrets, bytes | None, GroupInfo]:
    """Find our entry, decrypt GroupSecrets and GroupInfo: (suite, secrets, psk_secret, info)."""
    suite = get_suite(welcome.cipher_suite)
    kp = bundle.key_package
    if kp.cipher_suite != welcome.cipher_suite:
        raise ValidationError("Welcome cipher suite differs from our KeyPackage's")
    ref = kp.ref(suite)
    entry = next((s for s in welcome.secrets if s.new_member == ref), None)
    if entry is None:
        raise ValidationError("Welcome has no entry for our KeyPackage")
    ct = entry.encrypted_group_secrets
    group_secrets = GroupSecrets.decode(
        suite.decrypt_with_label(
            bundle.init_private,
            "Welcome",
            welcome.encrypted_group_info,
            ct.kem_output,
            ct.ciphertext,
        )
    )
    special = [
        p
        for p in group_secrets.psks
        if p.psktype == PSKType.RESUMPTION
        and p.usage in (ResumptionPSKUsage.REINIT, ResumptionPSKUsage.BRANCH)
    ]
    if len(special) > 1:
        raise ValidationError("more than one reinit/branch resumption PSK")
    psk_secret = resolve_psks(suite, group_secrets.psks, lookup)
    welcome_secret = key_schedule.welcome_secret(suite, group_secrets.joiner_secret, psk_secret)
    key, nonce = key_schedule.welcome_key_nonce(suite, welcome_secret)
    group_info = GroupInfo.decode(suite.aead_open(key, nonce, b"", welcome.encrypted_group_info))
    return suite, group_secrets, psk_secret, group_info
