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
from . import tree_math as tm
from .errors import SignatureError, ValidationError
from .key_schedule import derive_epoch_from_joiner
from .proposals import check_extensions_unique, required_capabilities
from .psk import PreSharedKeyID, PSKType, ResumptionPSKUsage
from .ratchet_tree import RatchetTree, validate_tree
from .secret_tree import SecretTree
from .state import GroupState
from .structs import (
    Capabilities,
    Credential,
    CredentialType,
    EncryptedGroupSecrets,
    Extension,
    ExtensionType,
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
from .structs import RatchetTree as RatchetTreeStruct
from .suites import CipherSuite, get_suite
from .transcript import interim_transcript_hash, verify_confirmation_tag
from .treekem import PathKeys

__all__ = [
    "DEFAULT_LIFETIME",
    "KeyPackageBundle",
    "PskLookup",
    "build_welcome",
    "default_capabilities",
    "join_state",
    "make_key_package",
    "open_welcome",
    "resolve_psks",
    "verified_tree",
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


def _find_extension(extensions: Iterable[Extension], ext_type: int) -> Extension | None:
    return next((e for e in extensions if e.extension_type == ext_type), None)


def verified_tree(
    suite: CipherSuite,
    info: GroupInfo,
    ratchet_tree: RatchetTreeStruct | bytes | None,
    *,
    now: int | None,
) -> RatchetTree:
    """The group's tree from the argument or the GroupInfo, fully validated (12.4.3.1)."""
    check_extensions_unique(info.extensions, "GroupInfo")
    context = info.group_context
    check_extensions_unique(context.extensions, "GroupContext")
    if ratchet_tree is None:
        ext = _find_extension(info.extensions, ExtensionType.RATCHET_TREE)
        if ext is None:
            raise ValidationError("no ratchet tree: not in the GroupInfo and none given")
        tree = RatchetTree.decode(suite, ext.extension_data)
    elif isinstance(ratchet_tree, bytes | bytearray):
        tree = RatchetTree.decode(suite, bytes(ratchet_tree))
    else:
        tree = RatchetTree.from_struct(suite, ratchet_tree)
    signer = tree.leaf(info.signer)
    if signer is None:
        raise ValidationError("GroupInfo signer leaf is blank")
    if not info.verify_signature(suite, signer.signature_key):
        raise SignatureError("GroupInfo signature does not verify")
    if tree.tree_hash() != context.tree_hash:
        raise ValidationError("ratchet tree does not match the GroupInfo tree hash")
    validate_tree(
        tree,
        group_id=context.group_id,
        required=required_capabilities(context.extensions),
        now=now,
    )
    return tree


def join_state(
    welcome: Welcome,
    bundle: KeyPackageBundle,
    ratchet_tree: RatchetTreeStruct | bytes | None,
    lookup: PskLookup,
    *,
    tree_now: int | None,
) -> GroupState:
    """The member state a Welcome gives us (12.4.3.1), everything checked.

    ``tree_now`` checks the lifetimes of the tree's leaves against that time.
    """
    suite, group_secrets, psk_secret, info = open_welcome(welcome, bundle, lookup)
    context = info.group_context
    if context.cipher_suite != suite.id or context.version != ProtocolVersion.MLS10:
        raise ValidationError("GroupInfo cipher suite or version differs from the Welcome")
    tree = verified_tree(suite, info, ratchet_tree, now=tree_now)
    my_leaf = tree.find_leaf(bundle.key_package.leaf_node)
    if my_leaf is None:
        raise ValidationError("our KeyPackage's leaf is not in the tree")
    for ext in context.extensions:
        leaf = bundle.key_package.leaf_node
        if ext.extension_type > 5 and ext.extension_type not in leaf.capabilities.extensions:
            raise ValidationError(f"group uses unsupported extension {ext.extension_type}")
    keys = PathKeys(my_leaf)
    keys.set(2 * my_leaf, bundle.encryption_private, bundle.key_package.leaf_node.encryption_key)
    if group_secrets.path_secret is not None:
        ancestor = tm.common_ancestor(2 * my_leaf, 2 * info.signer)
        fdp = [p for p, _ in tree.filtered_direct_path(info.signer)]
        if ancestor not in fdp:
            raise ValidationError("path secret for a node off the signer's path")
        keys.implant_path(tree, fdp[fdp.index(ancestor) :], group_secrets.path_secret)
    secrets = derive_epoch_from_joiner(
        suite,
        joiner_secret=group_secrets.joiner_secret,
        psk_secret=psk_secret,
        group_context=context,
    )
    verify_confirmation_tag(
        suite,
        confirmation_key=secrets.confirmation_key,
        confirmed=context.confirmed_transcript_hash,
        tag=info.confirmation_tag,
    )
    special = [
        p
        for p in group_secrets.psks
        if p.psktype == PSKType.RESUMPTION and p.usage != ResumptionPSKUsage.APPLICATION
    ]
    if special and context.epoch != 1:
        raise ValidationError("reinit/branch Welcome must start at epoch 1")
    state = GroupState(
        suite=suite,
        context=context,
        tree=tree,
        keys=keys,
        signature_private=bundle.signature_private,
        secrets=secrets,
        interim_transcript_hash=interim_transcript_hash(
            suite, context.confirmed_transcript_hash, info.confirmation_tag
        ),
        confirmation_tag=info.confirmation_tag,
        secret_tree=SecretTree(suite, secrets.encryption_secret, tree.n_leaves),
    )
    state.remember_resumption()
    return state
