"""Trace files: pcapng (read back by the real tshark with the shipped dissector) when the name
ends in .pcapng, JSON lines otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from peertap.sidecar import wire
from peertap.sidecar.trace import Trace

PEER_A = "12D3KooWTraceTestPeerAAAA"
PEER_B = "12D3KooWTraceTestPeerBBBB"

DATA = wire.DataHeader(15, wire.FLAG_FRAGMENT, b"V" * 16, b"M" * 16, b"T" * 16, b"S" * 8, 42)
PACKETS = {
    "data": DATA.encode() + b"c" * 30 + b"g" * 16,
    "announce": wire.Announce(15, b"O" * 32, b"V" * 16, 7, 1, (b"t" * 16, b"u" * 16), b"s" * 64),
    "control": wire.Control(15, 1_764_450_000_123_456, b"V" * 16, 3, b"K" * 32, b"body", b"s" * 64),
    "intro": wire.Intro(2, 2, wire.ROLE_RELAY, (b"cred-one", b"cred-two")),
}


def raw(name: str) -> bytes:
    p = PACKETS[name]
    return p if isinstance(p, bytes) else p.encode()


def write(path: Path) -> None:
    trace = Trace(path)
    trace.record("tx", PEER_A, raw("data"))
    trace.record("rx", PEER_B, raw("announce"))
    trace.record("flood", PEER_A, memoryview(raw("control")))
    trace.record("fwd", PEER_B, raw("intro"))
    trace.close()


def test_pcapng_has_one_interface_per_trunk_and_the_direction_of_each_packet(
    tmp_path: Path, tshark: Callable[..., str]
) -> None:
    path = tmp_path / "node.pcapng"
    write(path)
    fields = ("frame.interface_name", "frame.comment", "frame.len", "peertap.type")
    out = tshark("-r", str(path), "-T", "fields", *[f"-e{f}" for f in fields])
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows == [
        [PEER_A, "tx", str(len(raw("data"))), "1"],
        [PEER_B, "rx", str(len(raw("announce"))), "2"],
        [PEER_A, "flood", str(len(raw("control"))), "3"],
        [PEER_B, "fwd", str(len(raw("intro"))), "4"],
    ]


def test_the_dissector_names_every_header_field(tmp_path: Path, tshark: Callable[..., str]) -> None:
    path = tmp_path / "node.pcapng"
    write(path)
    detail = tshark("-r", str(path), "-O", "peertap")
    expected = [
        "Version: 2",
        "Hop limit: 15",
        "Fragment: True",
        "VLAN-ID: " + "56" * 16,
        "MLS-ID: " + "4d" * 16,
        "VFT: " + "54" * 16,
        "Sender id: " + "53" * 8,
        "Counter: 42",
        "Ciphertext: " + "63" * 30,
        "AES-GCM tag: " + "67" * 16,
        "Origin (node public key): " + "4f" * 32,
        "Sequence: 7",
        "Distance: 1",
        "Tokens: 2",
        "VFT: " + "75" * 16,
        "Timestamp (microseconds since the Unix epoch): 1764450000123456",
        "Kind: COMMIT (3)",
        "Signer (node public key): " + "4b" * 32,
        "Body: " + b"body".hex(),
        "Ed25519 signature: ",
        "Lowest protocol version: 2",
        "Highest protocol version: 2",
        "Relay: True",
        "Credentials: 2",
        "Credential length: 8",
        "Node credential: " + b"cred-two".hex(),
    ]
    for text in expected:
        assert text in detail, text
    assert "Malformed" not in detail


def test_appending_to_a_pcapng_trace_starts_a_new_section(
    tmp_path: Path, tshark: Callable[..., str]
) -> None:
    path = tmp_path / "node.pcapng"
    write(path)
    write(path)
    out = tshark("-r", str(path), "-T", "fields", "-e", "frame.interface_name")
    assert out.split() == [PEER_A, PEER_B, PEER_A, PEER_B] * 2


def test_other_names_keep_the_json_lines_format(tmp_path: Path) -> None:
    path = tmp_path / "node.trace"
    write(path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["dir"], x["peer"], x["type"]) for x in lines] == [
        ("tx", PEER_A, "data"),
        ("rx", PEER_B, "announce"),
        ("flood", PEER_A, "control"),
        ("fwd", PEER_B, "intro"),
    ]
    assert lines[0]["counter"] == 42 and lines[0]["fragment"] is True
    assert lines[1]["packet"] == raw("announce").hex()
