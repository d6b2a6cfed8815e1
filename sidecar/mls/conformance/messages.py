"""messages vectors: every struct decodes and re-encodes to the same bytes."""

from __future__ import annotations

from typing import Any

from .. import structs as s
from ..errors import MLSError
from .result import ConformanceError, check

__all__ = ["run_case"]

# vector field -> (struct, required MLSMessage wire format / content type, or None)
_FIELDS: dict[str, tuple[type[s.Struct], int | None, int | None]] = {
    "mls_welcome": (s.MLSMessage, s.WireFormat.WELCOME, None),
    "mls_group_info": (s.MLSMessage, s.WireFormat.GROUP_INFO, None),
    "mls_key_package": (s.MLSMessage, s.WireFormat.KEY_PACKAGE, None),
    "ratchet_tree": (s.RatchetTree, None, None),
    "group_secrets": (s.GroupSecrets, None, None),
    "add_proposal": (s.Add, None, None),
    "update_proposal": (s.Update, None, None),
    "remove_proposal": (s.Remove, None, None),
    "pre_shared_key_proposal": (s.PreSharedKey, None, None),
    "re_init_proposal": (s.ReInit, None, None),
    "external_init_proposal": (s.ExternalInit, None, None),
    "group_context_extensions_proposal": (s.GroupContextExtensions, None, None),
    "commit": (s.Commit, None, None),
    "public_message_application": (
        s.MLSMessage,
        s.WireFormat.PUBLIC_MESSAGE,
        s.ContentType.APPLICATION,
    ),
    "public_message_proposal": (s.MLSMessage, s.WireFormat.PUBLIC_MESSAGE, s.ContentType.PROPOSAL),
    "public_message_commit": (s.MLSMessage, s.WireFormat.PUBLIC_MESSAGE, s.ContentType.COMMIT),
    "private_message": (s.MLSMessage, s.WireFormat.PRIVATE_MESSAGE, None),
}


def run_case(case: dict[str, Any]) -> None:
    for name, (struct, wire_format, content_type) in _FIELDS.items():
        data = bytes.fromhex(case[name])
        try:
            value = struct.decode(data)
        except MLSError as err:
            raise ConformanceError(name, f"does not decode: {err}") from err
        if wire_format is not None:
            assert isinstance(value, s.MLSMessage)
            check(f"{name}.wire_format", value.wire_format, wire_format)
            if content_type is not None:
                assert isinstance(value.body, s.PublicMessage)
                check(f"{name}.content_type", value.body.content.content_type, content_type)
        # A fresh encoding, not the bytes remembered from decoding.
        check(name, _fresh_encoding(value), data)


def _fresh_encoding(value: s.Struct) -> bytes:
    """Encode from the fields, dropping encodings remembered while decoding."""
    _forget(value)
    return value.encode()


def _forget(value: Any) -> None:
    if isinstance(value, tuple):
        for item in value:
            _forget(item)
    elif isinstance(value, s.Struct):
        value.__dict__.pop("_encoding", None)
        for child in list(value.__dict__.values()):
            _forget(child)
