"""psk VLANs: the secret file gives the keys, rotates without a restart and never loses
frames in flight; a bad rewrite keeps the keys in use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from peertap.sidecar import wire
from peertap.sidecar.crypto.frames import FrameOpener, FrameSealer, OpenError
from peertap.sidecar.crypto.psk_keys import PskFileError, PskKeyProvider

VID = bytes(range(16))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, *secrets: bytes) -> None:
    # A different size or mtime tells the provider the file changed.
    path.write_text("\n".join(s.hex() for s in secrets) + "\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def provider(path: Path, clock: Clock) -> PskKeyProvider:
    return PskKeyProvider(vlan_id=VID, path=path, grace_s=5, clock=clock)


def frame(keys: PskKeyProvider) -> bytes:
    return FrameSealer(VID, keys).seal(vft=b"t" * 16, plaintext=b"psk frame", hop_limit=4)


def opens(keys: PskKeyProvider, packet: bytes) -> bool:
    try:
        FrameOpener(keys).open(packet, wire.decode_data(packet))
    except OpenError:
        return False
    return True


def test_nodes_with_the_same_secret_read_each_other_and_others_do_not(tmp_path: Path) -> None:
    clock = Clock()
    secret = os.urandom(32)
    write(tmp_path / "a", secret)
    write(tmp_path / "b", secret)
    write(tmp_path / "c", os.urandom(32))
    a, b, c = (provider(tmp_path / n, clock) for n in "abc")
    assert opens(b, frame(a))
    assert not opens(c, frame(a))


def test_a_rotation_in_three_steps_loses_nothing(tmp_path: Path) -> None:
    clock = Clock()
    old, new = os.urandom(32), os.urandom(32)
    for n in "ab":
        write(tmp_path / n, old)
    a, b = provider(tmp_path / "a", clock), provider(tmp_path / "b", clock)
    # 1. Both accept the new secret; both still send with the old one.
    for n, p in (("a", a), ("b", b)):
        write(tmp_path / n, old, new)
        assert p.reload()
    assert opens(b, frame(a))
    # 2. a sends with the new secret first; b, not yet switched, still reads it.
    write(tmp_path / "a", new, old)
    assert a.reload()
    assert opens(b, frame(a)) and opens(a, frame(b))
    # 3. The old secret is dropped; frames under it open only within the grace window.
    in_flight = frame(b)
    write(tmp_path / "a", new)
    assert a.reload()
    assert opens(a, in_flight)
    clock.now = 6
    assert not opens(a, in_flight)


def test_a_malformed_rewrite_keeps_the_secrets_in_use(tmp_path: Path) -> None:
    clock = Clock()
    write(tmp_path / "a", os.urandom(32))
    a = provider(tmp_path / "a", clock)
    before = a.current().mls_id
    (tmp_path / "a").write_text("not hex at all, and longer than before\n")
    with pytest.raises(PskFileError):
        a.reload()
    assert a.current().mls_id == before
    assert not a.reload()


@pytest.mark.parametrize("content", ["", "abcd\n", ("00" * 32 + "\n") * 9])
def test_unusable_files_are_refused_at_start(tmp_path: Path, content: str) -> None:
    (tmp_path / "a").write_text(content)
    with pytest.raises(PskFileError):
        provider(tmp_path / "a", Clock())
