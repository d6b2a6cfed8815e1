"""What a relay knows, turned against the frames it carries: a key-recovery attempt.

`learned(trace, status, config)` collects every value a relay saw on the wire (its trace:
every header field and every 16- and 32-byte window of every ANNOUNCE, CONTROL and
INTRO packet, which covers origins, signers, credentials and keys they name) and in its
own status and configuration. `frame_key_candidates` derives every frame key those values
could give under each of PeerTap's key schedules (public, psk, the version-1 open-VLAN
schedule, the values used as keys themselves), with guessed labels. `opens_any` tries
them on DATA packets: an MLS-ID match or an AEAD that opens means the relay could read.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import Any

import blake3

from peertap.sidecar import wire
from peertap.sidecar.crypto.frames import FrameOpener, OpenError
from peertap.sidecar.crypto.keys import PUBLIC_KEY_CONTEXT, EpochKeys
from peertap.sidecar.crypto.psk_keys import frame_key as psk_frame_key

V1_OPEN_CONTEXT = "peertap/v1 open-vlan frame key"
LABEL_GUESSES = ("lab", "default", "test", "prod", "vlan", "peertap", "demo")


def _windows(data: bytes, size: int) -> Iterable[bytes]:
    for i in range(0, max(0, len(data) - size + 1)):
        yield data[i : i + size]


def _hex_values(doc: Any) -> Iterable[bytes]:
    """Every hex string of 16 or 32 bytes anywhere in a JSON document."""
    if isinstance(doc, dict):
        for v in doc.values():
            yield from _hex_values(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _hex_values(v)
    elif isinstance(doc, str) and len(doc) in (32, 64):
        with contextlib.suppress(ValueError):
            yield bytes.fromhex(doc)


def learned(trace_lines: list[str], *extra_docs: Any) -> tuple[set[bytes], list[bytes]]:
    """(values of 16 and 32 bytes the relay knows, DATA packets it carried)."""
    values: set[bytes] = set()
    data: list[bytes] = []
    others: set[bytes] = set()
    for line in trace_lines:
        entry = json.loads(line)
        packet = bytes.fromhex(entry["packet"])
        if entry.get("type") == "data":
            data.append(packet)
            h = wire.decode_data(packet)
            values.update((h.vlan_id, h.mls_id, h.vft, h.sender))
        else:
            others.add(packet[wire.PREFIX_LEN :])
    for packet in others:
        for size in (16, 32):
            values.update(_windows(packet, size))
    for doc in extra_docs:
        values.update(_hex_values(doc))
    return values, data


def frame_key_candidates(
    values: set[bytes], data: list[bytes], labels: Iterable[str] = LABEL_GUESSES
) -> set[bytes]:
    keys: set[bytes] = set()
    vlan_ids = {wire.decode_data(p).vlan_id for p in data}
    for v in values:
        if len(v) == 32:
            keys.add(v)
            for label in labels:
                keys.add(
                    blake3.blake3(v + label.encode(), derive_key_context=PUBLIC_KEY_CONTEXT).digest(
                        32
                    )
                )
            for vid in vlan_ids:
                keys.add(psk_frame_key(v, vid))
        if len(v) == 16:
            keys.add(blake3.blake3(v, derive_key_context=V1_OPEN_CONTEXT).digest(32))
    return keys


def opens_any(data: list[bytes], keys: set[bytes]) -> bool:
    by_mls_id = {EpochKeys(epoch=0, frame_key=k).mls_id: k for k in keys}
    for packet in data:
        h = wire.decode_data(packet)
        key = by_mls_id.get(h.mls_id)
        if key is None:
            continue
        provider = _Fixed(EpochKeys(epoch=0, frame_key=key))
        try:
            FrameOpener(provider).open(packet, h)
        except OpenError:
            continue
        return True
    return False


class _Fixed:
    def __init__(self, keys: EpochKeys) -> None:
        self.keys = keys

    def current(self) -> EpochKeys:
        return self.keys

    def lookup(self, mls_id: bytes) -> EpochKeys | None:
        return self.keys if mls_id == self.keys.mls_id else None
