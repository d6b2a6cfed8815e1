"""psk_secret vectors: chaining external PSKs into psk_secret."""

from __future__ import annotations

from typing import Any

from ..psk import PreSharedKeyID, psk_secret
from ..suites import get_suite
from .result import check

__all__ = ["run_case"]


def run_case(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    psks = [
        (
            PreSharedKeyID.external(bytes.fromhex(p["psk_id"]), bytes.fromhex(p["psk_nonce"])),
            bytes.fromhex(p["psk"]),
        )
        for p in case["psks"]
    ]
    check("psk_secret", psk_secret(suite, psks), bytes.fromhex(case["psk_secret"]))
