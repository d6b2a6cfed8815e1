"""Hostile peers against a real lab: members a and b reach each other only through relay r;
pod x runs hostile_node.py (a real libp2p peer speaking the trunk protocol) against r.

Each attack runs while a pings b; the assertions are that honest traffic keeps crossing
(ping loss under 1%), that the relay counts what it refused, and that its memory stays
bounded. The attacker is admitted (it holds a node credential from the lab's authority)
unless the test says otherwise: these are insider attacks, the worst case.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peertap.sidecar import admission, identity
from peertap.sidecar.lab import Lab, LabSpec
from peertap.sidecar.lab.nodes import CREATOR_KEY
from peertap.sidecar.lab.spec import BootstrapSpec, LinkSpec, NodeRole, PodSpec

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HOSTILE = Path(__file__).with_name("hostile_node.py")
MAX_LOSS = 0.01
MAX_RELAY_RSS_MIB = 400


def hostile_lab(*, security: str = "public", stranger_node: bool = False) -> LabSpec:
    pods = [
        PodSpec(name="a", node=NodeRole(role="member")),
        PodSpec(name="r", node=NodeRole(role="relay")),
        PodSpec(name="b", node=NodeRole(role="member")),
        PodSpec(name="x", node=NodeRole(role="member") if stranger_node else None),
    ]
    bootstrap = [BootstrapSpec(dialer="a", target="r"), BootstrapSpec(dialer="b", target="r")]
    if stranger_node:
        bootstrap.append(BootstrapSpec(dialer="x", target="r"))
    return LabSpec(
        pods=pods,
        links=[LinkSpec(a="a", b="r"), LinkSpec(a="r", b="b"), LinkSpec(a="x", b="r")],
        bootstrap=bootstrap,
        security=security,  # type: ignore[arg-type]
    )


def edit_config(lab: Lab, pod: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = lab.config_path(pod)
    cfg = json.loads(path.read_text())
    change(cfg)
    path.write_text(json.dumps(cfg))


def start(lab: Lab) -> None:
    for pod in lab.plan.node_pods():
        lab.start_node(pod)
    lab.wait_ready(timeout=30)
    deadline = time.monotonic() + 60
    while not ping_ok(lab, "a", "b"):
        assert time.monotonic() < deadline, "a never reached b"
        time.sleep(0.3)


def ping_ok(lab: Lab, src: str, dst: str) -> bool:
    r = lab.exec(src, ["ping", "-c1", "-W1", lab.overlay_address(dst)], capture_output=True)
    return r.returncode == 0


def ping_loss(lab: Lab, src: str, dst: str, *, count: int = 200) -> float:
    r = lab.exec(
        src,
        ["ping", "-q", "-c", str(count), "-i", "0.05", "-W", "5", lab.overlay_address(dst)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m, r.stdout + r.stderr
    sent, got = int(m.group(1)), int(m.group(2))
    return (sent - got) / sent


def attacker(lab: Lab, tmp_path: Path, *, credential: bool = True) -> tuple[Path, Path | None]:
    """A node key for the attacker and, for an insider, a credential from the lab's authority."""
    key = tmp_path / "hostile.key"
    ident = identity.generate()
    identity.save(ident, key)
    if not credential:
        return key, None
    creator = identity.load(lab.state_dir / CREATOR_KEY)
    now = dt.datetime.now(dt.UTC)
    cred = admission.issue(
        authority=creator,
        node_key=ident.public_bytes,
        identity="lab/hostile",
        not_before=now - dt.timedelta(minutes=1),
        not_after=now + dt.timedelta(hours=1),
    )
    path = tmp_path / "hostile.cred"
    path.write_text(admission.to_text(cred))
    return key, path


def launch(
    lab: Lab,
    tmp_path: Path,
    attack: str,
    *,
    duration: float,
    credential: bool = True,
    env: dict[str, str] | None = None,
    **extra: str,
) -> subprocess.Popen[str]:
    key, cred = attacker(lab, tmp_path, credential=credential)
    relay_id = lab.status("r")["peer_id"]
    argv = [
        sys.executable,
        str(HOSTILE),
        "--target",
        f"/ip4/{lab.underlay_address('r', 'x')}/tcp/4001/p2p/{relay_id}",
        "--key",
        str(key),
        "--attack",
        attack,
        "--duration",
        str(duration),
    ]
    if cred is not None:
        argv += ["--credential", str(cred)]
    for name, value in extra.items():
        argv += [f"--{name.replace('_', '-')}", value]
    return lab.spawn(
        "x", argv, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )


def wait_admitted(proc: subprocess.Popen[str]) -> None:
    wait_event(proc, "up")


def wait_event(proc: subprocess.Popen[str], event: str) -> None:
    """Read the attacker's JSON lines until `event` (it prints them in order)."""
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        assert line, f"the attacker ended before {event!r}"
        if json.loads(line)["event"] == event:
            return


def report(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=120)
    events = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    reports = [e for e in events if e["event"] == "report"]
    assert reports, out
    result: dict[str, Any] = reports[-1]
    return result


def relay_rss_mib(lab: Lab) -> float:
    pid = lab.node_pid("r")
    assert pid is not None
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert m
    return int(m.group(1)) / 1024


def drops(lab: Lab, pod: str) -> dict[str, int]:
    d: dict[str, int] = lab.status(pod)["counters"]["drops"]
    return d


def print_figures(name: str, loss: float, lab: Lab) -> None:
    print(f"{name}: ping loss {loss:.1%}, relay peak RSS {relay_rss_mib(lab):.0f} MiB")


def test_a_stranger_without_a_credential_is_refused_and_never_a_peer(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = lab_factory(hostile_lab(), start_nodes=False)
    start(lab)
    proc = launch(lab, tmp_path, "stranger", duration=8, credential=False)
    loss = ping_loss(lab, "a", "b", count=60)
    rep = report(proc)
    assert not rep["admitted"]
    # The relay answered its INTRO by closing the stream, again at every redial.
    assert rep["stats"]["intro_failures"] >= 1
    relay = lab.status("r")
    assert len(relay["peers"]) == 2
    assert relay["counters"]["drops"]["admission_refused_no_credential"] >= 1
    assert loss < MAX_LOSS


def test_a_relay_in_peers_mode_keeps_a_stranger_with_the_same_vlan_config_away(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(hostile_lab(stranger_node=True), start_nodes=False)
    members = [identity.load(lab.key_path(p)).peer_id for p in ("a", "b")]
    stranger = identity.load(lab.key_path("x")).peer_id

    def peers_mode(cfg: dict[str, Any]) -> None:
        cfg["admission"] = {"mode": "peers", "peers": members}

    edit_config(lab, "r", peers_mode)
    start(lab)
    time.sleep(3.0)
    assert not ping_ok(lab, "x", "a") and not ping_ok(lab, "x", "b")
    relay = lab.status("r")
    assert sorted(relay["peers"]) == sorted(members) and stranger not in relay["peers"]
    assert relay["counters"]["drops"]["admission_refused_not_listed"] >= 1
    assert lab.status("x")["peers"] == []
    assert ping_loss(lab, "a", "b", count=60) < MAX_LOSS


def test_forged_withdrawals_and_posing_as_an_origin_change_no_route(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = lab_factory(hostile_lab(), start_nodes=False)
    start(lab)
    routes_before = lab.status("r")["routes"]
    proc = launch(lab, tmp_path, "withdraw", duration=14)
    wait_admitted(proc)
    loss = ping_loss(lab, "a", "b")
    rep = report(proc)
    assert rep["sent"]["forged"] > 100
    d = drops(lab, "r")
    assert d["announce_signature"] > 0 and d["announce_distance"] > 0
    assert d["announce_future"] > 0
    assert lab.status("r")["routes"]["tokens"] >= routes_before["tokens"]
    print_figures("withdraw", loss, lab)
    assert loss < MAX_LOSS


def test_forged_copies_of_real_packets_never_suppress_them(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = lab_factory(hostile_lab(), start_nodes=False)
    start(lab)
    proc = launch(lab, tmp_path, "dedup", duration=16)
    wait_admitted(proc)
    time.sleep(2.0)
    loss = ping_loss(lab, "a", "b")
    rep = report(proc)
    assert rep["sent"]["dedup_forged"] > 100 and rep["sent"]["replayed"] > 0
    # The forgeries reached the members, which refused them after the relay let them by.
    refused = sum(drops(lab, p).get(r, 0) for p in ("a", "b") for r in ("auth", "replay"))
    assert refused > 100
    print_figures("dedup", loss, lab)
    assert loss < MAX_LOSS


def test_a_peer_that_stops_reading_is_cut_off_and_freezes_nothing(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = lab_factory(hostile_lab(), start_nodes=False)
    edit_config(lab, "r", lambda cfg: cfg.setdefault("trunk", {}).update(stall_timeout_s=6))
    start(lab)
    # The attacker grants the relay only Yamux's initial 256 KiB of window.
    proc = launch(lab, tmp_path, "slowread", duration=60, env={"PEERTAP_TRUNK_WINDOW": "262144"})
    wait_admitted(proc)
    # It announced the tokens it heard (so the relay copies traffic for b to it too) and
    # stopped reading; bulk traffic towards b now spends its window and fills its queue.
    wait_event(proc, "stopped_reading")
    # Its libp2p stack would still drain the socket into memory: freeze the whole process,
    # so nothing reads its end of the connection any more.
    os.kill(proc.pid, signal.SIGSTOP)
    server = lab.spawn("b", ["iperf3", "-s", "-1"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    lab.exec(
        "a",
        ["iperf3", "-c", lab.overlay_address("b"), "-n", "32M"],
        capture_output=True,
        timeout=120,
    )
    server.wait(timeout=30)
    loss = ping_loss(lab, "a", "b")
    deadline = time.monotonic() + 30
    while lab.status("r")["trunk"]["stalls"] < 1:
        assert time.monotonic() < deadline, "the stalled peer was never cut off"
        time.sleep(0.5)
    relay = lab.status("r")
    assert len(relay["peers"]) == 2 and len(relay["trunk_peers"]) == 2
    os.kill(proc.pid, signal.SIGCONT)
    proc.kill()
    proc.communicate()
    print_figures("slowread", loss, lab)
    assert loss < MAX_LOSS


def test_replayed_control_packets_of_any_age_change_nothing(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = lab_factory(hostile_lab(security="mls"), start_nodes=False)
    for pod in ("a", "r", "b"):
        edit_config(lab, pod, lambda cfg: cfg.setdefault("limits", {}).update(clock_skew_s=4))
    start(lab)
    before = {p: lab.status(p)["vlans"][0]["mls_id"] for p in ("a", "b")}
    assert before["a"] == before["b"]
    proc = launch(lab, tmp_path, "control-replay", duration=30, record_s="5", stale_after_s="6")
    wait_admitted(proc)
    loss = ping_loss(lab, "a", "b", count=300)
    rep = report(proc)
    assert rep["sent"]["replayed_now"] > 0 and rep["sent"]["replayed_stale"] > 0
    d = drops(lab, "r")
    assert d["control_duplicate"] > 0 and d["control_stale"] > 0
    after = {p: lab.status(p)["vlans"][0]["mls_id"] for p in ("a", "b")}
    assert after == before
    print_figures("control-replay", loss, lab)
    assert loss < MAX_LOSS


@pytest.mark.parametrize(
    ("attack", "counter"), [("control-flood", "control_rate_trunk"), ("garbage", "malformed_")]
)
def test_floods_of_junk_are_limited_and_counted(
    lab_factory: Callable[..., Lab], tmp_path: Path, attack: str, counter: str
) -> None:
    lab = lab_factory(hostile_lab(), start_nodes=False)
    start(lab)
    proc = launch(lab, tmp_path, attack, duration=14)
    wait_admitted(proc)
    loss = ping_loss(lab, "a", "b")
    report(proc)
    d = drops(lab, "r")
    assert any(k.startswith(counter) and v > 0 for k, v in d.items()), d
    rss = relay_rss_mib(lab)
    print_figures(attack, loss, lab)
    assert rss < MAX_RELAY_RSS_MIB
    assert loss < MAX_LOSS
