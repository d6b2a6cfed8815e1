"""secret-tree vectors: sender data key/nonce and ratchet keys/nonces per leaf and generation."""

from __future__ import annotations

from typing import Any

from ..secret_tree import RatchetType, SecretTree, sender_data_key_nonce
from ..suites import get_suite
from .result import check

__all__ = ["run_case"]


def run_case(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    h = bytes.fromhex
    sd = case["sender_data"]
    key, nonce = sender_data_key_nonce(suite, h(sd["sender_data_secret"]), h(sd["ciphertext"]))
    check("sender_data.key", key, h(sd["key"]))
    check("sender_data.nonce", nonce, h(sd["nonce"]))

    tree = SecretTree(suite, h(case["encryption_secret"]), len(case["leaves"]))
    for leaf, generations in enumerate(case["leaves"]):
        for i, vector in enumerate(generations):
            where = f"leaves[{leaf}][{i}]"
            generation = vector["generation"]
            for kind in RatchetType:
                key, nonce = tree.get(leaf, kind, generation)
                check(f"{where}.{kind.value}_key", key, h(vector[f"{kind.value}_key"]))
                check(f"{where}.{kind.value}_nonce", nonce, h(vector[f"{kind.value}_nonce"]))
