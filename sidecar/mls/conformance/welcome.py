"""Runner for welcome vectors: decrypt a Welcome, check the GroupInfo signature and tag."""

from __future__ import annotations

from typing import Any

from ..key_schedule import derive_epoch_from_joiner
from ..structs import KeyPackage, MLSMessage, Welcome
from ..transcript import verify_confirmation_tag
from ..welcome import KeyPackageBundle, open_welcome
from .result import ConformanceError, check

__all__ = ["run_case"]


def run_case(case: dict[str, Any]) -> None:
    kp_message = MLSMessage.decode(bytes.fromhex(case["key_package"]))
    welcome_message = MLSMessage.decode(bytes.fromhex(case["welcome"]))
    if not isinstance(kp_message.body, KeyPackage) or not isinstance(welcome_message.body, Welcome):
        raise ConformanceError("key_package/welcome", "wrong message types")
    bundle = KeyPackageBundle(kp_message.body, bytes.fromhex(case["init_priv"]), b"", b"")
    suite, secrets, psk_secret, info = open_welcome(welcome_message.body, bundle, lambda _: None)
    check("cipher_suite", suite.id, case["cipher_suite"])
    if not info.verify_signature(suite, bytes.fromhex(case["signer_pub"])):
        raise ConformanceError("group_info.signature", "does not verify with signer_pub")
    epoch = derive_epoch_from_joiner(
        suite,
        joiner_secret=secrets.joiner_secret,
        psk_secret=psk_secret,
        group_context=info.group_context,
    )
    verify_confirmation_tag(
        suite,
        confirmation_key=epoch.confirmation_key,
        confirmed=info.group_context.confirmed_transcript_hash,
        tag=info.confirmation_tag,
    )
