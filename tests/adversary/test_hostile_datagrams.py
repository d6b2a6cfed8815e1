"""Attacks on the datagram path and on version negotiation, against a real lab (see
test_hostile_peers.py: a and b reach each other only through relay r; x is the attacker).

- An off-path attacker in x sends the relay's UDP port garbage, datagrams under unknown
  sessions, forgeries under live sessions and replays of real datagrams it captured:
  every one is dropped and counted (by the relay's fast-path thread, which receives
  outside trio), no replayed frame reaches a member, and the datagram paths stay up and
  keep carrying a's pings.
- Peers speaking only an older (2) or a newer protocol version than the relay are
  refused with a counted reason, and never become peers.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_hostile_peers import MAX_LOSS, hostile_lab, launch, ping_loss, report, start

from peertap.sidecar import wire
from peertap.sidecar.datagram import codec
from peertap.sidecar.lab import Lab

pytestmark = [pytest.mark.netns, pytest.mark.slow]

ATTACKER = Path(__file__).with_name("hostile_datagrams.py")
PORT = 4001
PING_PATTERN = "7065657274617021"


def trunk(lab: Lab, pod: str) -> dict[str, int]:
    t: dict[str, int] = lab.status(pod)["trunk"]
    return t


def transport(lab: Lab, pod: str, peer_pod: str) -> Any:
    peer = lab.status(peer_pod)["peer_id"]
    return lab.status(pod).get("transports", {}).get(peer, {}).get("transport")


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def udp_payloads(pcap: Path) -> list[bytes]:
    """UDP payloads of a tcpdump capture on `any` (Linux cooked v1 or v2 headers)."""
    data = pcap.read_bytes()
    link = struct.unpack_from("<I", data, 20)[0]
    cooked = {113: 16, 276: 20}[link]
    out, pos = [], 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        frame = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        ip = frame[cooked:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4 :]
        out.append(udp[8 : struct.unpack_from(">H", udp, 4)[0]])
    return out


def test_forged_replayed_and_garbage_datagrams_are_dropped_counted_and_change_nothing(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = lab_factory(hostile_lab().model_copy(update={"trace": False}), start_nodes=False)
    start(lab)
    wait_until("a's datagram path to r", lambda: transport(lab, "a", "r") == "datagram")
    wait_until("r's datagram path to b", lambda: transport(lab, "r", "b") == "datagram")

    # Real datagrams from a to r, as anyone on the underlay sees them.
    pcap = tmp_path / "a-to-r.pcap"
    a_addr = lab.underlay_address("a", "r")
    cap = lab.spawn(
        "r",
        [
            "tcpdump",
            "-i",
            "any",
            "-U",
            "-s",
            "0",
            "-w",
            str(pcap),
            f"udp dst port {PORT} and src host {a_addr}",
        ],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    assert ping_loss(lab, "a", "b", count=5) == 0
    # Large pings too: their frames cross as fragments of one sealed record.
    big = lab.exec("a", ["ping", "-c", "3", "-s", "3000", lab.overlay_address("b")])
    assert big.returncode == 0
    time.sleep(0.3)
    cap.terminate()
    cap.wait(timeout=10)
    captured = udp_payloads(pcap)
    assert len(captured) >= 5
    captured_file = tmp_path / "captured.hex"
    captured_file.write_text("\n".join(d.hex() for d in captured))

    # b's interface during the attack: a replayed ping would show up here.
    seen = tmp_path / "b-icmp.pcap"
    watch = lab.spawn(
        "b", ["tcpdump", "-i", "pt-lab", "-U", "-w", str(seen), "icmp"], stderr=subprocess.DEVNULL
    )
    time.sleep(1.0)
    before = trunk(lab, "r")
    fast_before = lab.status("r")["fast_path"]["sources"]["udp"]
    r = lab.exec(
        "x",
        [
            sys.executable,
            str(ATTACKER),
            "--target",
            f"{lab.underlay_address('r', 'x')}:{PORT}",
            "--captured",
            str(captured_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    sent = json.loads(r.stdout)
    time.sleep(3.0)  # forged fragments wait for the rest of their record, then expire
    watch.terminate()
    watch.wait(timeout=10)
    after = trunk(lab, "r")

    def delta(name: str) -> int:
        return after.get(f"datagram_{name}", 0) - before.get(f"datagram_{name}", 0)

    malformed = sum(
        after[k] - before.get(k, 0) for k in after if k.startswith("datagram_malformed_")
    )
    assert malformed >= sent["garbage"] + sent["garbage_headers"]
    assert delta("unknown_session") >= sent["unknown"]
    # Forgeries fail authentication (whole datagrams at once; fragments when their record
    # is complete, else they expire unread), replays the replay window, fragments too.
    assert any(codec.parse_header(d).count > 1 for d in captured)
    assert delta("auth") >= 1
    assert delta("replay") >= sent["replayed"]
    assert delta("fragments_given_up") + delta("fragment_conflict") >= 1
    # Nothing the attacker sent is kept: no record is waiting in reassembly.
    assert after["datagram_partial_records"] == 0
    # The relay's fast-path thread (outside trio) took all of it, and nothing it sent
    # tripped an internal error there.
    fast_after = lab.status("r")["fast_path"]["sources"]["udp"]
    assert fast_after["batches"] > fast_before["batches"] and fast_after["errors"] == 0
    assert lab.status("r")["counters"]["drops"].get("internal_error", 0) == 0
    # Nothing the attacker sent reached b's interface ...
    icmp = subprocess.run(["tcpdump", "-r", str(seen), "-n"], capture_output=True, text=True)
    assert PING_PATTERN not in icmp.stdout and icmp.stdout.strip() == ""
    # ... and the paths it attacked still carry a's traffic.
    assert transport(lab, "a", "r") == "datagram"
    assert ping_loss(lab, "a", "b", count=50) < MAX_LOSS
    assert trunk(lab, "r")["datagram_peers_up"] >= 2


def test_peers_speaking_only_an_older_or_a_newer_version_are_refused_and_counted(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = lab_factory(hostile_lab().model_copy(update={"trace": False}), start_nodes=False)
    start(lab)
    # One peer speaks only version 2 (the INTRO a version 2 node sends), one only versions
    # newer than this node's; both hold a valid credential, so only the version refuses.
    ranges = {"older": "2-2", "newer": f"{wire.VERSION + 1}-{wire.VERSION + 2}"}
    procs = {}
    for name, versions in ranges.items():
        (tmp_path / name).mkdir()
        procs[name] = launch(lab, tmp_path / name, "stranger", duration=6, versions=versions)
    for proc in procs.values():
        assert not report(proc)["admitted"]
    relay = lab.status("r")
    assert relay["counters"]["drops"]["admission_refused_version"] >= len(ranges)
    assert len(relay["peers"]) == 2
