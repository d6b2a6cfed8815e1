"""The lab in real network namespaces: build, reach, exec, restart, tear down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pyroute2 import IPRoute, netns

from peertap.sidecar import identity
from peertap.sidecar.lab import (
    NODE_CMD_ENV,
    BootstrapSpec,
    Lab,
    LabSpec,
    LabSpecError,
    LabStateError,
    NodeExited,
    NodeRole,
    PodSpec,
    procs,
    random_prefix,
    topology,
)

pytestmark = pytest.mark.netns

LabFactory = Callable[..., Lab]


def _root_links_with(prefix: str) -> list[str]:
    with IPRoute() as ipr:
        names = [str(link.get("ifname")) for link in ipr.get_links()]
    return [n for n in names if n.startswith(prefix)]


def _netns_with(prefix: str) -> list[str]:
    return [n for n in netns.listnetns() if n.startswith(prefix)]


def _pings(lab: Lab, pod: str, address: str) -> bool:
    result = lab.exec(pod, ["ping", "-c1", "-W1", address], capture_output=True, check=False)
    return result.returncode == 0


def test_up_creates_prefixed_namespaces_with_veths_and_down_removes_them(
    tmp_path: Path, lab_factory: LabFactory
) -> None:
    lab = lab_factory(topology("relay"), start_nodes=False, state_dir=tmp_path / "s")
    assert sorted(_netns_with(lab.prefix)) == sorted(f"{lab.prefix}{p}" for p in ("a", "r", "b"))
    inside_r = lab.exec("r", ["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert "to-a@" in inside_r.stdout
    assert "to-b@" in inside_r.stdout
    assert _root_links_with(lab.prefix) == []
    lab.down()
    assert _netns_with(lab.prefix) == []
    assert _root_links_with(lab.prefix) == []
    assert not (tmp_path / "s").exists()


def test_underlay_ping_crosses_a_relay_pod_that_forwards(lab_factory: LabFactory) -> None:
    lab = lab_factory(topology("relay", routed=True), start_nodes=False)
    assert _pings(lab, "a", lab.underlay_address("b", "r"))


def test_underlay_ping_does_not_cross_a_relay_pod_that_does_not_forward(
    lab_factory: LabFactory,
) -> None:
    lab = lab_factory(topology("relay"), start_nodes=False)
    assert _pings(lab, "a", lab.underlay_address("r", "a"))
    assert _pings(lab, "a", lab.underlay_address("r", "b"))
    assert not _pings(lab, "a", lab.underlay_address("b", "r"))


def test_exec_runs_in_the_pods_namespace(lab_factory: LabFactory) -> None:
    lab = lab_factory(topology("pair"), start_nodes=False)
    for pod in ("a", "b"):
        result = lab.exec(pod, ["ip", "netns", "identify"], capture_output=True, text=True)
        assert result.stdout.strip() == lab.netns(pod)
    addrs = lab.exec("b", ["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    assert lab.underlay_address("b", "a") in addrs
    assert lab.underlay_address("a", "b") not in addrs


def test_nodes_become_ready_with_the_lab_key_tap_and_role(lab_factory: LabFactory) -> None:
    lab = lab_factory(topology("relay"))
    lab.wait_ready(timeout=30)
    member = lab.status("a")
    assert member["peer_id"] == identity.load(lab.key_path("a")).peer_id
    assert [v["interface"] for v in member["vlans"]] == ["pt-lab"]
    tap = lab.exec(
        "a", ["ip", "-o", "-4", "addr", "show", "pt-lab"], capture_output=True, text=True
    )
    assert f"{lab.overlay_address('a')}/24" in tap.stdout
    relay = lab.status("r")
    assert relay["vlans"] == []
    assert relay["relay"] == {"enabled": True, "acl": "open"}


def test_members_reach_each_other_over_the_relay_when_the_underlay_does_not_route(
    lab_factory: LabFactory,
) -> None:
    lab = lab_factory(topology("relay"))
    lab.wait_ready(timeout=30)
    assert not _pings(lab, "a", lab.underlay_address("b", "r"))
    ping = lab.exec(
        "a", ["ping", "-c1", "-w20", lab.overlay_address("b")], capture_output=True, text=True
    )
    assert ping.returncode == 0, ping.stdout


def test_a_stopped_node_restarts_with_the_same_key_and_config(lab_factory: LabFactory) -> None:
    lab = lab_factory(topology("pair"))
    lab.wait_ready(timeout=30)
    peer_id, config = lab.status("a")["peer_id"], lab.config_path("a").read_bytes()
    first = lab.node_pid("a")
    lab.stop_node("a")
    assert lab.node_pid("a") is None
    assert first is not None and not procs.alive(first)
    lab.start_node("a")
    lab.wait_ready(timeout=30)
    assert lab.node_pid("a") not in (None, first)
    assert lab.status("a")["peer_id"] == peer_id
    assert lab.config_path("a").read_bytes() == config


def test_wait_ready_names_a_node_that_exits(
    monkeypatch: pytest.MonkeyPatch, lab_factory: LabFactory
) -> None:
    monkeypatch.setenv(NODE_CMD_ENV, "false")
    lab = lab_factory(topology("pair"))
    with pytest.raises(NodeExited, match=r"node [ab] exited with 1"):
        lab.wait_ready(timeout=30)


def test_two_labs_at_once_do_not_collide(lab_factory: LabFactory) -> None:
    first = lab_factory(topology("relay", routed=True))
    second = lab_factory(topology("relay", routed=True))
    assert first.prefix != second.prefix
    first.wait_ready(timeout=30)
    second.wait_ready(timeout=30)
    first.down()
    assert _netns_with(first.prefix) == []
    assert len(_netns_with(second.prefix)) == 3
    assert _pings(second, "a", second.underlay_address("b", "r"))
    assert second.http_get("b", "/readyz").status == 200


_UP_AND_HANG = textwrap.dedent(
    """
    import sys, time
    from peertap.sidecar.lab import Lab, topology
    spec = topology(sys.argv[3], **({"members": 12} if sys.argv[3] == "star" else {}))
    Lab.up(spec, state_dir=sys.argv[1], prefix=sys.argv[2])
    print("up", flush=True)
    time.sleep(600)
    """
)


def _start_up_process(state: Path, prefix: str, topo: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _UP_AND_HANG, str(state), prefix, topo],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ,
    )


def _journal_ops(state: Path) -> list[str]:
    try:
        lines = (state / "journal.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line)["op"] for line in lines if line.endswith("}")]


def test_down_after_a_crash_of_the_up_process_removes_everything(tmp_path: Path) -> None:
    state, prefix = tmp_path / "state", random_prefix()
    proc = _start_up_process(state, prefix, "relay")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "up\n"
        node_pids = [pid for name in _netns_with(prefix) for pid in netns_pids(name)]
        assert node_pids
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        Lab.teardown(state, grace_s=5)
    assert _netns_with(prefix) == []
    assert _root_links_with(prefix) == []
    assert not any(procs.alive(pid) for pid in node_pids)
    assert not state.exists()


def test_down_after_up_was_killed_midway_removes_everything(tmp_path: Path) -> None:
    state, prefix = tmp_path / "state", random_prefix()
    proc = _start_up_process(state, prefix, "star")
    try:
        while _journal_ops(state).count("link") < 6 and proc.poll() is None:
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        Lab.teardown(state, grace_s=5)
    assert _netns_with(prefix) == []
    assert _root_links_with(prefix) == []
    assert not state.exists()


def netns_pids(name: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def test_a_second_lab_with_a_prefix_in_use_is_refused_and_the_first_stays(
    tmp_path: Path, lab_factory: LabFactory
) -> None:
    first = lab_factory(topology("pair"), start_nodes=False)
    with pytest.raises(LabStateError, match="in use"):
        Lab.up(topology("pair"), state_dir=tmp_path / "second", prefix=first.prefix)
    assert len(_netns_with(first.prefix)) == 2
    assert _pings(first, "a", first.underlay_address("b", "a"))


def test_a_failed_up_removes_what_it_had_built(tmp_path: Path) -> None:
    # No link joins a and b, so the bootstrap address fails after the pods exist.
    spec = LabSpec(
        pods=[
            PodSpec(name="a", node=NodeRole(role="member")),
            PodSpec(name="b", node=NodeRole(role="member")),
        ],
        bootstrap=[BootstrapSpec(dialer="a", target="b")],
    )
    prefix = random_prefix()
    with pytest.raises(LabSpecError, match="no underlay path"):
        Lab.up(spec, state_dir=tmp_path / "s", prefix=prefix)
    assert _netns_with(prefix) == []
    assert not (tmp_path / "s").exists()
