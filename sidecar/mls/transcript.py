"""Transcript hashes and the confirmation tag (RFC 9420 section 8.2).

confirmed[n] = Hash(interim[n-1] || ConfirmedTranscriptHashInput[n])
interim[n]   = Hash(confirmed[n] || InterimTranscriptHashInput[n])
confirmation_tag = MAC(confirmation_key, confirmed[n])
"""

from __future__ import annotations

from .codec import encode_varint
from .errors import SignatureError, ValidationError
from .structs import AuthenticatedContent, ContentType
from .suites import CipherSuite

__all__ = [
    "confirmation_tag",
    "confirmed_transcript_hash",
    "interim_transcript_hash",
    "update_transcript_hashes",
    "verify_confirmation_tag",
]


def confirmed_transcript_hash(
    suite: CipherSuite, interim_before: bytes, content: AuthenticatedContent
) -> bytes:
    """The confirmed transcript hash after the Commit carried in ``content``."""
    if content.content.content_type != ContentType.COMMIT:
        raise ValidationError("transcript hashes cover Commits only")
    return suite.hash(interim_before + content.confirmed_transcript_hash_input())


def interim_transcript_hash(suite: CipherSuite, confirmed: bytes, tag: bytes) -> bytes:
    """Hash(confirmed || InterimTranscriptHashInput{MAC confirmation_tag})."""
    return suite.hash(confirmed + encode_varint(len(tag)) + tag)


def update_transcript_hashes(
    suite: CipherSuite, interim_before: bytes, content: AuthenticatedContent
) -> tuple[bytes, bytes]:
    """(confirmed, interim) after the Commit in ``content`` (its auth carries the tag)."""
    tag = content.auth.confirmation_tag
    if tag is None:
        raise ValidationError("Commit without confirmation_tag")
    confirmed = confirmed_transcript_hash(suite, interim_before, content)
    return confirmed, interim_transcript_hash(suite, confirmed, tag)


def confirmation_tag(suite: CipherSuite, confirmation_key: bytes, confirmed: bytes) -> bytes:
    return suite.mac(confirmation_key, confirmed)


def verify_confirmation_tag(
    suite: CipherSuite, *, confirmation_key: bytes, confirmed: bytes, tag: bytes | None
) -> None:
    """Raise SignatureError unless ``tag`` is the confirmation tag of ``confirmed``."""
    if tag is None or not suite.verify_mac(confirmation_key, confirmed, tag):
        raise SignatureError("confirmation_tag does not verify")
