"""key-schedule vectors: GroupContext, every epoch secret, external_pub, exporter."""

from __future__ import annotations

from typing import Any

from .. import key_schedule as ks
from ..structs import GroupContext, ProtocolVersion
from ..suites import get_suite
from .result import check

__all__ = ["run_case"]

_SECRETS = (
    "joiner_secret",
    "welcome_secret",
    "init_secret",
    "sender_data_secret",
    "encryption_secret",
    "exporter_secret",
    "epoch_authenticator",
    "external_secret",
    "confirmation_key",
    "membership_key",
    "resumption_psk",
)


def run_case(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    h = bytes.fromhex
    group_id = h(case["group_id"])
    init_secret = h(case["initial_init_secret"])
    for epoch, vector in enumerate(case["epochs"]):
        where = f"epochs[{epoch}]"
        context = GroupContext(
            ProtocolVersion.MLS10,
            suite.id,
            group_id,
            epoch,
            h(vector["tree_hash"]),
            h(vector["confirmed_transcript_hash"]),
        )
        check(f"{where}.group_context", context.encode(), h(vector["group_context"]))
        secrets = ks.derive_epoch(
            suite,
            init_secret=init_secret,
            commit_secret=h(vector["commit_secret"]),
            psk_secret=h(vector["psk_secret"]),
            group_context=context,
        )
        for name in _SECRETS:
            check(f"{where}.{name}", getattr(secrets, name), h(vector[name]))
        external_pub = secrets.external_key_pair(suite)[1]
        check(f"{where}.external_pub", external_pub, h(vector["external_pub"]))
        exp = vector["exporter"]
        exported = secrets.exporter(suite, exp["label"], h(exp["context"]), exp["length"])
        check(f"{where}.exporter.secret", exported, h(exp["secret"]))
        init_secret = secrets.init_secret
