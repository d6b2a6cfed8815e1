"""Runner for passive-client vectors (welcome, handling-commit, random): join with a
Welcome, then follow every epoch's proposals and commit, checking epoch authenticators."""

from __future__ import annotations

from typing import Any

from ..group import Group, GroupOptions
from ..structs import KeyPackage, MLSMessage
from ..suites import get_suite
from ..welcome import KeyPackageBundle
from .result import ConformanceError, check

__all__ = ["run_case"]

# Vectors are recorded once; their lifetimes are not checked against today's clock.
_OPTIONS = GroupOptions(clock=None)


def run_case(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    kp_message = MLSMessage.decode(bytes.fromhex(case["key_package"]))
    kp = kp_message.body
    if not isinstance(kp, KeyPackage):
        raise ConformanceError("key_package", "not a KeyPackage message")
    signature_priv = bytes.fromhex(case["signature_priv"])
    encryption_priv = bytes.fromhex(case["encryption_priv"])
    init_priv = bytes.fromhex(case["init_priv"])
    leaf = kp.leaf_node
    check("signature_priv", suite.signature_public_from_private(signature_priv), leaf.signature_key)
    check("encryption_priv", suite.hpke_public_from_private(encryption_priv), leaf.encryption_key)
    check("init_priv", suite.hpke_public_from_private(init_priv), kp.init_key)

    psks = {bytes.fromhex(p["psk_id"]): bytes.fromhex(p["psk"]) for p in case["external_psks"]}
    tree = case.get("ratchet_tree")
    group = Group.join_from_welcome(
        bytes.fromhex(case["welcome"]),
        KeyPackageBundle(kp, init_priv, encryption_priv, signature_priv),
        bytes.fromhex(tree) if tree else None,
        psks=psks,
        options=_OPTIONS,
    )
    check(
        "initial_epoch_authenticator",
        group.epoch_authenticator,
        bytes.fromhex(case["initial_epoch_authenticator"]),
    )
    for i, epoch in enumerate(case["epochs"]):
        for j, proposal in enumerate(epoch["proposals"]):
            try:
                group.process(bytes.fromhex(proposal))
            except Exception as err:
                raise ConformanceError(f"epochs[{i}].proposals[{j}]", repr(err)) from err
        try:
            group.process(bytes.fromhex(epoch["commit"]))
        except Exception as err:
            raise ConformanceError(f"epochs[{i}].commit", repr(err)) from err
        check(
            f"epochs[{i}].epoch_authenticator",
            group.epoch_authenticator,
            bytes.fromhex(epoch["epoch_authenticator"]),
        )
