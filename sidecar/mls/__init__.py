"""mls: RFC 9420 Messaging Layer Security on ``cryptography`` (see module docstrings).

The group API is in ``group``; the rest are its layers (codec, suites, structs,
key schedule, secret tree, framing, ratchet tree, TreeKEM) and ``conformance``.
"""

from .errors import MLSError
from .group import (
    CommitResult,
    Group,
    GroupInactiveError,
    GroupOptions,
    KeyPackageBundle,
    Member,
    ProcessedMessage,
    make_key_package,
)

__all__ = [
    "CommitResult",
    "Group",
    "GroupInactiveError",
    "GroupOptions",
    "KeyPackageBundle",
    "MLSError",
    "Member",
    "ProcessedMessage",
    "make_key_package",
]
