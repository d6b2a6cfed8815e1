"""crypto-basics vectors: RefHash, ExpandWithLabel, DeriveSecret, DeriveTreeSecret,
SignWithLabel/VerifyWithLabel and EncryptWithLabel/DecryptWithLabel."""

from __future__ import annotations

from typing import Any

from ..errors import MLSError
from ..suites import get_suite
from .result import ConformanceError, check

__all__ = ["run_case"]


def run_case(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    h = bytes.fromhex

    v = case["ref_hash"]
    check("ref_hash.out", suite.ref_hash(v["label"], h(v["value"])), h(v["out"]))

    v = case["expand_with_label"]
    out = suite.expand_with_label(h(v["secret"]), v["label"], h(v["context"]), v["length"])
    check("expand_with_label.out", out, h(v["out"]))

    v = case["derive_secret"]
    check("derive_secret.out", suite.derive_secret(h(v["secret"]), v["label"]), h(v["out"]))

    v = case["derive_tree_secret"]
    out = suite.derive_tree_secret(h(v["secret"]), v["label"], v["generation"], v["length"])
    check("derive_tree_secret.out", out, h(v["out"]))

    v = case["sign_with_label"]
    priv, pub, content = h(v["priv"]), h(v["pub"]), h(v["content"])
    check("sign_with_label.pub", suite.signature_public_from_private(priv), pub)
    if not suite.verify_with_label(pub, v["label"], content, h(v["signature"])):
        raise ConformanceError("sign_with_label.signature", "does not verify")
    fresh = suite.sign_with_label(priv, v["label"], content)
    if not suite.verify_with_label(pub, v["label"], content, fresh):
        raise ConformanceError("sign_with_label", "own signature does not verify")

    v = case["encrypt_with_label"]
    priv, pub, context = h(v["priv"]), h(v["pub"]), h(v["context"])
    label, plaintext = v["label"], h(v["plaintext"])
    check("encrypt_with_label.pub", suite.hpke_public_from_private(priv), pub)
    try:
        pt = suite.decrypt_with_label(priv, label, context, h(v["kem_output"]), h(v["ciphertext"]))
    except MLSError as err:
        raise ConformanceError("encrypt_with_label.ciphertext", f"does not decrypt: {err}") from err
    check("encrypt_with_label.plaintext", pt, plaintext)
    kem_output, ciphertext = suite.encrypt_with_label(pub, label, context, plaintext)
    pt = suite.decrypt_with_label(priv, label, context, kem_output, ciphertext)
    check("encrypt_with_label (round trip)", pt, plaintext)
