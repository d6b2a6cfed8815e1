"""The datagram path end to end: real `peertap run` processes in network namespaces.

DATA crosses in UDP datagrams (encrypted: no plaintext in a capture of the underlay)
when both nodes offer it, falls back to the trunk stream while UDP is dropped by a
firewall (nftables) and comes back when it is allowed again, crosses a relay in datagrams,
sizes its datagrams to a smaller MTU on the way without any IP fragment, and a node
that does not offer datagrams interoperates over the stream."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from overlay_checks import pings, wait_until

from peertap.sidecar.lab import Lab, topology

pytestmark = [pytest.mark.netns, pytest.mark.slow]

PING_PATTERN = "7065657274617021"  # "peertap!" in every echo payload
TRUNK_PORT = 4001


def path_to(lab: Lab, pod: str, peer_pod: str) -> dict[str, Any]:
    peer_id = lab.status(peer_pod)["peer_id"]
    paths: dict[str, dict[str, Any]] = lab.status(pod).get("transports", {})
    return paths.get(peer_id, {})


def transport(lab: Lab, pod: str, peer_pod: str) -> str | None:
    value = path_to(lab, pod, peer_pod).get("transport")
    return str(value) if value is not None else None


def fast_batches(lab: Lab, pod: str, source: str) -> int:
    """Batches the node's fast-path thread handled for `source` (fastpath/: outside trio)."""
    fast = lab.status(pod)["fast_path"]
    assert fast["enabled"], fast
    row: dict[str, int] = fast["sources"][source]
    assert row["errors"] == 0, fast
    return row["batches"]


def captured(lab: Lab, pod: str, path: Path, bpf: str) -> subprocess.Popen[bytes]:
    return lab.spawn(
        pod,
        ["tcpdump", "-i", "any", "-U", "--immediate-mode", "-s", "0", "-w", str(path), bpf],
        stderr=subprocess.DEVNULL,
    )


def packets_in(path: Path) -> list[str]:
    r = subprocess.run(
        ["tcpdump", "-r", str(path), "-n", "-q"], capture_output=True, text=True, check=True
    )
    return [line for line in r.stdout.splitlines() if line.strip()]


NFT_TABLE = "peertap_test_udp_block"


@pytest.fixture
def udp_blocked() -> Iterator[Callable[[Lab, str], None]]:
    """Drop UDP to and from the trunk port in a pod's namespace (nftables); undo after."""
    blocked: list[tuple[Lab, str]] = []

    def block(lab: Lab, pod: str) -> None:
        hook = "type filter hook {} priority 0; udp {} " + str(TRUNK_PORT) + " drop;"
        rules = (
            f"table inet {NFT_TABLE} {{\n"
            f"  chain input {{ {hook.format('input', 'dport')} }}\n"
            f"  chain output {{ {hook.format('output', 'sport')} }}\n"
            "}\n"
        )
        lab.exec(pod, ["nft", "-f", "-"], input=rules.encode(), check=True)
        blocked.append((lab, pod))

    yield block
    for lab, pod in blocked:
        unblock(lab, pod)


def unblock(lab: Lab, pod: str) -> None:
    lab.exec(pod, ["nft", "delete", "table", "inet", NFT_TABLE], capture_output=True)


def test_data_crosses_in_encrypted_datagrams(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = lab_factory(topology("pair").model_copy(update={"trace": False}))
    lab.wait_ready(timeout=30)
    wait_until("a ping a -> b", lambda: pings(lab, "a", "b"))
    wait_until("the datagram path a -> b", lambda: transport(lab, "a", "b") == "datagram")
    wait_until("the datagram path b -> a", lambda: transport(lab, "b", "a") == "datagram")

    udp_file, tcp_file = tmp_path / "udp.pcap", tmp_path / "tcp.pcap"
    caps = [
        captured(lab, "b", udp_file, f"udp port {TRUNK_PORT}"),
        captured(lab, "b", tcp_file, f"tcp port {TRUNK_PORT} and greater 200"),
    ]
    time.sleep(1.0)
    tap_before, udp_before = fast_batches(lab, "a", "tap-pt-lab"), fast_batches(lab, "b", "udp")
    assert pings(lab, "a", "b", count=10, extra=("-p", PING_PATTERN, "-s", "1200"))
    # The fast-path thread carried them: on a it read the TAP and sealed, on b it
    # received and opened (/status is republished every 0.5 s: wait for it).
    wait_until(
        "a's fast path to count", lambda: fast_batches(lab, "a", "tap-pt-lab") >= tap_before + 10, 5
    )
    wait_until(
        "b's fast path to count", lambda: fast_batches(lab, "b", "udp") >= udp_before + 10, 5
    )
    time.sleep(0.3)
    for c in caps:
        c.terminate()
        c.wait(timeout=10)

    udp = packets_in(udp_file)
    # 10 requests and 10 replies of 1200 bytes, each at least one datagram; probes besides.
    assert sum(1 for line in udp if "length" in line and int(line.rsplit(" ", 1)[-1]) > 1200) >= 20
    assert bytes.fromhex(PING_PATTERN) not in udp_file.read_bytes()
    # The stream no longer carries the frames (only ANNOUNCEs and the like, far fewer).
    assert len(packets_in(tcp_file)) < 10
    path = path_to(lab, "a", "b")
    assert path["rtt_ms"] is not None and path["rtt_ms"] > 0
    assert path["datagram_size"] >= 1232
    assert path["loss"] < 1.0
    trunk = lab.status("a")["trunk"]
    assert trunk["datagram_sessions_sent"] >= 1 and trunk["datagram_sessions_received"] >= 1


def test_falls_back_to_the_stream_while_udp_is_blocked(
    lab_factory: Callable[..., Lab], udp_blocked: Callable[[Lab, str], None]
) -> None:
    lab = lab_factory(topology("pair").model_copy(update={"trace": False}))
    lab.wait_ready(timeout=30)
    wait_until("the datagram path a -> b", lambda: transport(lab, "a", "b") == "datagram")

    udp_blocked(lab, "b")
    wait_until("a's fallback to the stream", lambda: transport(lab, "a", "b") == "stream", 10)
    # a's fast path hands what has no datagram path to the trio loop's trunk stream.
    tap_before = fast_batches(lab, "a", "tap-pt-lab")
    assert pings(lab, "a", "b", count=5)
    wait_until(
        "a's fast path to count", lambda: fast_batches(lab, "a", "tap-pt-lab") >= tap_before + 5, 5
    )
    assert path_to(lab, "a", "b")["went_down"] >= 1

    unblock(lab, "b")
    wait_until("the datagram path again", lambda: transport(lab, "a", "b") == "datagram", 10)
    assert pings(lab, "a", "b", count=3)


def test_a_relay_forwards_over_datagram_paths(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(topology("relay").model_copy(update={"trace": False}))
    lab.wait_ready(timeout=30)
    wait_until("a ping a -> b through r", lambda: pings(lab, "a", "b"))
    for pod, peer in (("a", "r"), ("r", "a"), ("r", "b"), ("b", "r")):
        wait_until(
            f"datagram path {pod} -> {peer}",
            lambda pod=pod, peer=peer: transport(lab, pod, peer) == "datagram",
        )
    b_id = lab.status("b")["peer_id"]

    def sent_to_b() -> tuple[int, int]:
        status = lab.status("r")
        # Path probes (docs/protocol.md, 5a) do not use the stream while the datagram
        # path is up: the datagram path's own probes score it.
        stream = status["trunk_peers"][b_id]["records_sent"]
        return stream, status["counters"]["events"]["fwd_packets"]

    stream_before, forwarded_before = sent_to_b()
    r = lab.exec("a", ["ping", "-c", "20", "-i", "0.1", "-W", "1", lab.overlay_address("b")])
    assert r.returncode == 0, "no ping crossed the relay"
    stream_after, forwarded_after = sent_to_b()
    # The relay forwarded a's requests to b, and not on its trunk stream to b (which
    # carries only the odd ANNOUNCE meanwhile): in datagrams.
    assert forwarded_after - forwarded_before >= 10
    assert stream_after - stream_before < 5


def test_a_node_without_the_datagram_path_interoperates_over_the_stream(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(topology("pair").model_copy(update={"trace": False}), start_nodes=False)
    # b speaks only what a node before the datagram path spoke: no datagram role bit.
    cfg_path = lab.config_path("b")
    cfg = json.loads(cfg_path.read_text())
    assert cfg["trunk"]["datagram"] is True
    cfg["trunk"]["datagram"] = False
    cfg_path.write_text(json.dumps(cfg))
    for pod in lab.pods:
        lab.start_node(pod)
    lab.wait_ready(timeout=30)
    wait_until("a ping a -> b", lambda: pings(lab, "a", "b"))
    assert pings(lab, "a", "b", count=3)
    assert transport(lab, "a", "b") == "stream"
    a_trunk = lab.status("a")["trunk"]
    assert a_trunk.get("datagram_sessions_sent", 0) == 0
    # Neither side saw anything it did not understand.
    for pod in ("a", "b"):
        drops = lab.status(pod)["counters"]["drops"]
        assert not any(k.startswith("malformed") for k in drops), drops


def test_a_smaller_mtu_on_the_way_is_discovered_and_nothing_is_ip_fragmented(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    # a - r - b, r routes IP and runs no node; a dials b across it. r's link to b has a
    # smaller MTU than a's own link, which a's node can only learn by probing.
    spec = topology("relay", relay_node=False).model_copy(update={"trace": False})
    lab = lab_factory(spec, start_nodes=False)
    toward_b = lab.underlay_address("r", "b")
    r = lab.exec("r", ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    ifname = next(line.split()[1] for line in r.stdout.splitlines() if f" {toward_b}/" in line)
    lab.exec("r", ["ip", "link", "set", ifname, "mtu", "1300"], check=True)
    for pod in lab.plan.node_pods():
        lab.start_node(pod)
    lab.wait_ready(timeout=30)
    wait_until("a ping a -> b", lambda: pings(lab, "a", "b"))
    wait_until("the datagram path a -> b", lambda: transport(lab, "a", "b") == "datagram")
    # 1300 - 28 bytes of IP and UDP headers: of the candidates only 1232 fits.
    assert path_to(lab, "a", "b")["datagram_size"] == 1232

    fragments = tmp_path / "fragments.pcap"
    cap = captured(lab, "r", fragments, "ip[6:2] & 0x3fff != 0")
    time.sleep(1.0)
    # 1400-byte pings: each frame is larger than one datagram, so it is cut in two.
    assert pings(lab, "a", "b", count=10, extra=("-s", "1400"))
    time.sleep(0.3)
    cap.terminate()
    cap.wait(timeout=10)
    assert packets_in(fragments) == []
    assert transport(lab, "a", "b") == "datagram"

    # The capture method works: a plain 2000-byte ping on the underlay is IP-fragmented.
    control = tmp_path / "control.pcap"
    cap = captured(lab, "r", control, "ip[6:2] & 0x3fff != 0")
    time.sleep(1.0)
    lab.exec("a", ["ping", "-c", "2", "-s", "2000", "-M", "dont", toward_b], capture_output=True)
    time.sleep(0.3)
    cap.terminate()
    cap.wait(timeout=10)
    assert len(packets_in(control)) >= 2
