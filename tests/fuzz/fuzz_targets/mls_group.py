"""MLS group input: `mls.Group.process` and `Group.join_from_welcome` on arbitrary bytes.

A member b of a two-member group (restored fresh for every input) processes the
message; a joiner c, whose KeyPackage a real Welcome adds, joins with it. Input: one
byte (even: process, odd: join), then the MLSMessage. Seeds are the Commits,
proposal, application message and Welcome a peer really sends. Asserts that both
return or raise an MLSError, nothing else.
"""

from __future__ import annotations

from peertap.sidecar.mls import Group, MLSError

from . import world

NAME = "mls_group"
PROCESS, JOIN = 0, 1


def seeds() -> list[bytes]:
    w = world.mls()
    out = [
        bytes([PROCESS]) + msg.encode()
        for msg in (w.commit_path, w.commit_for_c, w.proposal, w.application, w.welcome)
    ]
    out.append(bytes([JOIN]) + w.welcome.encode())
    out.append(bytes([JOIN]) + w.commit_for_c.encode())
    return out


def check(data: bytes) -> None:
    if not data:
        return
    w = world.mls()
    message = data[1:]
    try:
        if data[0] % 2 == PROCESS:
            Group.restore(w.b_state).process(message)
        else:
            joined = Group.join_from_welcome(message, w.joiner)
            assert joined.members()
    except MLSError:
        pass
