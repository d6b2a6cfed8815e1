"""transcript-hashes vectors: confirmation tag and confirmed/interim transcript hashes."""

from __future__ import annotations

from typing import Any

from .. import transcript
from ..errors import MLSError
from ..structs import AuthenticatedContent, ContentType
from ..suites import get_suite
from .result import ConformanceError, check

__all__ = ["run_case"]


def run_case(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    h = bytes.fromhex
    try:
        content = AuthenticatedContent.decode(h(case["authenticated_content"]))
    except MLSError as err:
        raise ConformanceError("authenticated_content", f"does not decode: {err}") from err
    check("authenticated_content.content_type", content.content.content_type, ContentType.COMMIT)
    confirmed_after = h(case["confirmed_transcript_hash_after"])
    try:
        transcript.verify_confirmation_tag(
            suite,
            confirmation_key=h(case["confirmation_key"]),
            confirmed=confirmed_after,
            tag=content.auth.confirmation_tag,
        )
    except MLSError as err:
        raise ConformanceError("authenticated_content.auth.confirmation_tag", str(err)) from err
    confirmed, interim = transcript.update_transcript_hashes(
        suite, h(case["interim_transcript_hash_before"]), content
    )
    check("confirmed_transcript_hash_after", confirmed, confirmed_after)
    check("interim_transcript_hash_after", interim, h(case["interim_transcript_hash_after"]))
