"""Two relays between two members: paths are scored (by their datagram paths' own
probes, with no stream PROBEs beside them), and a relay that dies or freezes costs at
most about a second of pings. Real nodes in namespaces; assertions on ping
counts at a fixed interval and on which relay forwarded, never on elapsed time."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator

import pytest
from test_overlay import counters, wait_ping, wait_until

from peertap.sidecar.lab import Lab, LabSpec
from peertap.sidecar.lab.spec import BootstrapSpec, LinkSpec, NodeRole, PodSpec

pytestmark = [pytest.mark.netns, pytest.mark.slow]

PING_INTERVAL = "0.02"
PINGS = 200  # 4 s of pings at 20 ms
MAX_LOST = 55  # about 1 s of pings at 20 ms, and a few for the ones in flight


def two_relays() -> LabSpec:
    """a and b, each linked to both pure relays r1 and r2; no direct underlay a-b."""
    return LabSpec(
        pods=[
            PodSpec(name="a", node=NodeRole(role="member")),
            PodSpec(name="r1", node=NodeRole(role="relay")),
            PodSpec(name="r2", node=NodeRole(role="relay")),
            PodSpec(name="b", node=NodeRole(role="member")),
        ],
        links=[
            LinkSpec(a="a", b="r1"),
            LinkSpec(a="a", b="r2"),
            LinkSpec(a="b", b="r1"),
            LinkSpec(a="b", b="r2"),
        ],
        bootstrap=[BootstrapSpec(dialer=m, target=r) for m in ("a", "b") for r in ("r1", "r2")],
        trace=False,
    )


def relay_in_use(lab: Lab, relays: tuple[str, ...] = ("r1", "r2")) -> str:
    """The relay that forwarded most of a short burst of pings."""
    before = {r: counters(lab, r)["events"].get("fwd_packets", 0) for r in relays}
    lab.exec("a", ["ping", "-c", "20", "-i", PING_INTERVAL, "-q", lab.overlay_address("b")])
    grew = {r: counters(lab, r)["events"].get("fwd_packets", 0) - before[r] for r in before}
    return max(grew, key=lambda r: grew[r])


def lost_pings(proc: subprocess.Popen[str]) -> int:
    out, _ = proc.communicate(timeout=60)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    return int(m.group(1)) - int(m.group(2))


@pytest.fixture
def relays(lab_factory: Callable[..., Lab]) -> Iterator[Lab]:
    lab = lab_factory(two_relays())
    lab.wait_ready(timeout=40)
    wait_ping(lab, "a", "b")
    wait_until(
        "both relays known as paths to the other member, on a and b",
        lambda: all([len(o["paths"]) for o in lab.status(m)["origins"]] == [2] for m in ("a", "b")),
        timeout=20,
    )
    wait_until(
        "both relays scored on a and b",
        lambda: all(
            len(lab.status(m)["paths"]) == 2
            and all(p["samples"] > 0 for p in lab.status(m)["paths"].values())
            for m in ("a", "b")
        ),
        timeout=20,
    )
    wait_until(
        "both relays measured by their datagram paths on a and b",
        lambda: all(
            all(p["source"] == "datagram" for p in lab.status(m)["paths"].values())
            for m in ("a", "b")
        ),
        timeout=20,
    )
    yield lab


def samples(lab: Lab, pod: str) -> dict[str, int]:
    return {peer: p["samples"] for peer, p in lab.status(pod)["paths"].items()}


def start_ping(lab: Lab) -> subprocess.Popen[str]:
    return lab.spawn(
        "a",
        ["ping", "-c", str(PINGS), "-i", PING_INTERVAL, "-W", "1", lab.overlay_address("b")],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_frozen_relay_then_a_killed_one_cost_at_most_a_second_of_pings_each(
    relays: Lab,
) -> None:
    lab = relays
    ids = {r: lab.status(r)["peer_id"] for r in ("r1", "r2")}
    paths = lab.status("a")["paths"]
    assert set(paths) == set(ids.values())
    assert all(p["rtt_ms"] > 0 and not p["stalled"] for p in paths.values())

    # One measurement per path: while the datagram paths are up, their own probes score
    # them (samples grow) and no PROBE goes out on the trunk streams.
    probes_before = counters(lab, "a")["events"].get("probe_tx", 0)
    seen = samples(lab, "a")
    wait_until(
        "new samples from both datagram paths",
        lambda: all(n >= seen[peer] + 2 for peer, n in samples(lab, "a").items()),
        timeout=20,
    )
    assert counters(lab, "a")["events"].get("probe_tx", 0) == probes_before
    # Per destination: every path's distance + rank, the best one the route in use.
    (origin,) = [o for o in lab.status("a")["origins"] if len(o["paths"]) == 2]
    assert set(origin["scores"]) == set(ids.values())
    assert origin["scores"][origin["via"]] == min(origin["scores"].values())

    # Frozen (SIGSTOP): its trunks stay up, only the probes notice.
    frozen = relay_in_use(lab)
    pid = lab.node_pid(frozen)
    assert pid is not None
    ping = start_ping(lab)
    subprocess.run(["sleep", "1"], check=True)
    try:
        subprocess.run(["kill", "-STOP", str(pid)], check=True)
        lost = lost_pings(ping)
        for member in ("a", "b"):
            status = lab.status(member)
            assert ids[frozen] in status["peers"]
            assert status["paths"][ids[frozen]]["stalled"]
    finally:
        subprocess.run(["kill", "-CONT", str(pid)], check=False)
    print(f"frozen {frozen}: {lost} of {PINGS} pings lost at {PING_INTERVAL} s")
    assert lost <= MAX_LOST

    # Back, and scored again; then the relay in use is killed.
    wait_until(
        "the thawed relay to answer probes again",
        lambda: not any(p["stalled"] for p in lab.status("a")["paths"].values()),
        timeout=20,
    )
    killed = relay_in_use(lab)
    pid = lab.node_pid(killed)
    assert pid is not None
    ping = start_ping(lab)
    subprocess.run(["sleep", "1"], check=True)
    subprocess.run(["kill", "-KILL", str(pid)], check=True)
    lost = lost_pings(ping)
    print(f"killed {killed}: {lost} of {PINGS} pings lost at {PING_INTERVAL} s")
    assert lost <= MAX_LOST
    other = "r2" if killed == "r1" else "r1"
    assert relay_in_use(lab, (other,)) == other and lab.node_pid(killed) is None
