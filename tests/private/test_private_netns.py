"""Private VLANs end to end: real `peertap run` processes in network namespaces, MLS groups
formed over the management VLAN through a relay, real TAPs; assertions on what crosses."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peertap.sidecar import identity, ids
from peertap.sidecar.lab import BootstrapSpec, Lab, LabSpec, LinkSpec, NodeRole, PodSpec, topology
from peertap.sidecar.lab.nodes import CREATOR_KEY
from peertap.sidecar.private import authority, revocation

pytestmark = [pytest.mark.netns, pytest.mark.slow]

MEMBER_TIMEOUT_S = 4.0


def wait_until(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def pings(lab: Lab, src: str, dst: str, *, count: int = 1) -> bool:
    r = lab.exec(
        src,
        ["ping", "-c", str(count), "-W", "1", "-i", "0.2", lab.overlay_address(dst)],
        capture_output=True,
    )
    return r.returncode == 0


def vlan_status(lab: Lab, pod: str) -> dict[str, Any]:
    vlan: dict[str, Any] = lab.status(pod)["vlans"][0]
    return vlan


def drops(lab: Lab, pod: str) -> dict[str, int]:
    d: dict[str, int] = lab.status(pod)["counters"]["drops"]
    return d


def events(lab: Lab, pod: str) -> dict[str, int]:
    e: dict[str, int] = lab.status(pod)["counters"]["events"]
    return e


def private_lab(
    lab_factory: Callable[..., Lab],
    members: int,
    *,
    credential_for: Callable[[str, identity.Identity, bytes], bytes] | None = None,
    start: Callable[[str], bool] = lambda pod: True,
    spec: LabSpec | None = None,
    tweak: Callable[[str, dict[str, Any]], None] = lambda pod, vlan: None,
    tweak_node: Callable[[str, dict[str, Any]], None] = lambda pod, cfg: None,
    **vlan_settings: Any,
) -> Lab:
    """A star whose VLAN is private: every member gets a credential from the lab's creator
    (or from `credential_for(pod, creator, member_key)`), then the nodes (those `start`
    accepts) start. `vlan_settings` go into the VLAN entry of every member. `spec`
    replaces the star (its members' pod names must start with "m"); `tweak(pod, vlan)`
    may change one pod's VLAN entry, `tweak_node(pod, cfg)` its whole config."""
    lab = lab_factory(spec or topology("star", members=members), start_nodes=False)
    creator = identity.load(Path(lab.state_dir) / CREATOR_KEY)
    for pod in lab.pods:
        if not pod.startswith("m"):
            continue
        member_key = identity.load(lab.key_path(pod)).public_bytes
        cfg_path = lab.config_path(pod)
        cfg = json.loads(cfg_path.read_text())
        vlan = cfg["vlans"][0]
        vid = ids.vlan_id(creator.public_bytes, vlan["label"])
        if credential_for is not None:
            cred = credential_for(pod, creator, member_key)
        else:
            cred = issue(creator, member_key, vid)
        (cfg_path.parent / "lab.cred").write_bytes(cred)
        vlan.update(
            security="mls",
            credential="lab.cred",
            member_timeout_s=MEMBER_TIMEOUT_S,
            epoch_grace_s=2.0,
        )
        vlan.update(vlan_settings)
        tweak(pod, vlan)
        tweak_node(pod, cfg)
        cfg_path.write_text(json.dumps(cfg))
    started = [pod for pod in lab.pods if start(pod)]
    for pod in started:
        lab.start_node(pod)
    lab.wait_ready(timeout=30, pods=started)
    return lab


def issue(
    signer: identity.Identity, member_key: bytes, vid: bytes, *, expired: bool = False
) -> bytes:
    now = dt.datetime.now(dt.UTC)
    return authority.issue(
        authority=signer,
        member_identity="lab/member",
        member_key=member_key,
        vlan_id=vid,
        issued=now - dt.timedelta(days=2),
        expires=now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=1),
    ).encode()


def all_in(lab: Lab, pods: list[str]) -> bool:
    """Every pod is a member of a group of exactly `pods` (epochs may differ for a moment)."""
    views = [vlan_status(lab, p) for p in pods]
    return all(v["mls_state"] == "member" and v["members"] == len(pods) for v in views) and (
        len({v["group"] for v in views}) == 1
    )


def converged(lab: Lab, pods: list[str]) -> bool:
    views = [vlan_status(lab, p) for p in pods]
    return (
        all(v["mls_state"] == "member" and v["members"] == len(pods) for v in views)
        and len({(v["epoch"], v["mls_id"]) for v in views}) == 1
    )


def test_five_members_form_a_private_vlan_and_ping_each_other(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = private_lab(lab_factory, 5)
    members = [f"m{i}" for i in range(1, 6)]
    wait_until("one group of five", lambda: converged(lab, members))
    views = [vlan_status(lab, p) for p in members]
    assert views[0]["epoch"] >= 1, "epoch advances as members join"
    assert len(views[0]["mls_id"]) == 32
    assert sum(v["committer"] for v in views) == 1
    for a, b in zip(members, members[1:] + members[:1], strict=True):
        wait_until(f"ping {a} -> {b}", lambda a=a, b=b: pings(lab, a, b), 20)  # type: ignore[misc]


def test_members_with_foreign_or_expired_credentials_cannot_join(
    lab_factory: Callable[..., Lab],
) -> None:
    def credential_for(pod: str, creator: identity.Identity, member_key: bytes) -> bytes:
        vid = ids.vlan_id(creator.public_bytes, "lab")
        if pod == "m3":
            return issue(identity.generate(), member_key, vid)
        if pod == "m4":
            return issue(creator, member_key, vid, expired=True)
        return issue(creator, member_key, vid)

    lab = private_lab(lab_factory, 4, credential_for=credential_for)
    wait_until("m1 and m2 in one group", lambda: converged(lab, ["m1", "m2"]))
    rejected = {"mvlan_rejected_wrong_authority", "mvlan_rejected_expired"}
    wait_until("both credentials rejected", lambda: rejected <= drops(lab, "m1").keys())
    assert pings(lab, "m1", "m2", count=2)
    for bad, reason in (("m3", "wrong_authority"), ("m4", "expired")):
        # A node that knows its own credential is refused founds no group of its own.
        status = vlan_status(lab, bad)
        assert status["mls_state"] == "credential_invalid"
        assert status["credential_error"] == reason
        assert lab.status(bad)["counters"]["events"].get("mvlan_groups_founded", 0) == 0
        before = drops(lab, bad).get("no_route", 0)
        assert not pings(lab, bad, "m1", count=2)
        # Without the group's key a joiner cannot even name a token anyone wants (tokens
        # are salted with the key), so its frames die at its own node.
        assert drops(lab, bad).get("no_route", 0) > before
    assert converged(lab, ["m1", "m2"])


def test_a_stopped_member_is_removed_and_later_traffic_uses_keys_it_never_held(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = private_lab(lab_factory, 3)
    members = ["m1", "m2", "m3"]
    seen: set[str] = set()

    def all_in() -> bool:
        seen.update(vlan_status(lab, p)["mls_id"] for p in members)
        return converged(lab, members)

    wait_until("one group of three", all_in)
    epoch = vlan_status(lab, "m1")["epoch"]
    lab.stop_node("m3")
    wait_until("m3 removed", lambda: converged(lab, ["m1", "m2"]), 30)
    removed_at = time.time()
    after = vlan_status(lab, "m1")
    assert after["epoch"] > epoch
    assert after["mls_id"] not in seen
    assert pings(lab, "m1", "m2", count=3)
    # Every DATA packet the relay carried after the removal names an epoch m3 never had.
    crossed = []
    for line in lab.trace_path("r").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("type") == "data" and rec["ts"] > removed_at:
            crossed.append(rec["mls_id"])
    assert crossed
    assert not set(crossed) & seen


def iperf_listening(lab: Lab, pod: str) -> bool:
    r = lab.exec(pod, ["ss", "-Hltn", "sport = :5201"], capture_output=True, text=True)
    return bool(r.stdout.strip())


def test_a_tcp_flow_survives_many_epoch_changes(lab_factory: Callable[..., Lab]) -> None:
    lab = private_lab(lab_factory, 3, rekey_interval_s=2.0)
    members = ["m1", "m2", "m3"]
    wait_until("one group of three", lambda: all_in(lab, members))
    wait_until("ping m1 -> m2", lambda: pings(lab, "m1", "m2"), 20)
    epochs = {vlan_status(lab, p)["epoch"] for p in members}
    lost = {p: drops(lab, p).get("unknown_epoch", 0) for p in members}
    server = lab.spawn("m2", ["iperf3", "-s", "-1"], stdout=subprocess.DEVNULL)
    wait_until("iperf3 server listening", lambda: iperf_listening(lab, "m2"), 10)
    client = lab.spawn(
        "m1",
        ["iperf3", "-c", lab.overlay_address("m2"), "-t", "15", "-J"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[int] = set()
    while client.poll() is None:
        seen.add(vlan_status(lab, "m1")["epoch"])
        time.sleep(0.5)
    out, err = client.communicate(timeout=30)
    server.wait(timeout=30)
    assert client.returncode == 0, err
    assert json.loads(out)["end"]["sum_received"]["bytes"] > 0
    # Several epochs came and went while the flow ran; every member followed them.
    assert len(seen - epochs) >= 3
    # Epochs keep changing every fraction of a second, so rather than catch all members
    # on one, check that each of them followed well past the start.
    for pod in members:
        wait_until(
            f"{pod} past epoch {max(epochs) + 3}",
            lambda pod=pod: vlan_status(lab, pod)["epoch"] > max(epochs) + 3,  # type: ignore[misc]
            20,
        )
    # Old keys stay valid for epoch_grace_s and commits reach members before frames under
    # their new keys: no frame was dropped for want of its epoch's key.
    assert {p: drops(lab, p).get("unknown_epoch", 0) for p in members} == lost


def test_when_the_committer_is_killed_another_member_takes_over_and_joins_still_work(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = private_lab(lab_factory, 4, start=lambda pod: pod != "m4")
    first = ["m1", "m2", "m3"]
    wait_until("one group of three", lambda: converged(lab, first))
    (committer,) = [p for p in first if vlan_status(lab, p)["committer"]]
    lab.stop_node(committer, grace_s=0)
    rest = [p for p in first if p != committer]
    wait_until("the others remove it", lambda: converged(lab, rest), 30)
    assert [vlan_status(lab, p)["committer"] for p in rest].count(True) == 1
    routed = events(lab, "r").get("control_directed_routed", 0)
    lab.start_node("m4")
    lab.wait_ready(timeout=30, pods=["m4"])
    wait_until("m4 joins the survivors", lambda: converged(lab, [*rest, "m4"]), 30)
    for p in rest:
        wait_until(f"ping m4 -> {p}", lambda p=p: pings(lab, "m4", p), 20)  # type: ignore[misc]
    # Its Welcome went through the relay toward m4 only (learned route), and m4 takes the
    # members' small HELLOs (credential digests) from the group's tree. (/status is a
    # snapshot the node publishes every so often: wait for it to show the count.)
    wait_until(
        "the relay routes m4's Welcome",
        lambda: events(lab, "r").get("control_directed_routed", 0) > routed,
        20,
    )
    wait_until(
        "m4 resolves small HELLOs", lambda: events(lab, "m4").get("mvlan_hello_digests", 0) > 0, 20
    )


def two_sites() -> LabSpec:
    """m1, m2 - r1 - r2 - m3, m4: two relays, each with two members; r1 dials r2."""
    member, relay = NodeRole(role="member"), NodeRole(role="relay")
    sites = {"r1": ["m1", "m2"], "r2": ["m3", "m4"]}
    return LabSpec(
        pods=[PodSpec(name=r, node=relay) for r in sites]
        + [PodSpec(name=m, node=member) for ms in sites.values() for m in ms],
        links=[LinkSpec(a="r1", b="r2")]
        + [LinkSpec(a=m, b=r) for r, ms in sites.items() for m in ms],
        bootstrap=[BootstrapSpec(dialer="r1", target="r2")]
        + [BootstrapSpec(dialer=m, target=r) for r, ms in sites.items() for m in ms],
    )


def test_a_partitioned_group_carries_on_in_both_halves_and_heals_into_one(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = private_lab(lab_factory, 4, spec=two_sites())
    members = ["m1", "m2", "m3", "m4"]
    wait_until("one group of four", lambda: converged(lab, members))
    lab.exec("r1", ["ip", "link", "set", "to-r2", "down"], check=True)
    wait_until("left half on its own", lambda: converged(lab, ["m1", "m2"]), 30)
    wait_until("right half on its own", lambda: converged(lab, ["m3", "m4"]), 30)
    assert pings(lab, "m1", "m2") and pings(lab, "m3", "m4")
    lab.exec("r1", ["ip", "link", "set", "to-r2", "up"], check=True)
    wait_until("one group of four again", lambda: converged(lab, members), 40)
    assert len({vlan_status(lab, p)["group"] for p in members}) == 1
    wait_until("ping m1 -> m4", lambda: pings(lab, "m1", "m4"), 20)


def test_two_members_configured_with_one_mac_both_see_the_collision(
    lab_factory: Callable[..., Lab],
) -> None:
    same = "02:00:00:00:00:01"

    def tweak(pod: str, vlan: dict[str, Any]) -> None:
        if pod in ("m1", "m2"):
            vlan["interface"]["mac"] = same

    lab = private_lab(lab_factory, 3, tweak=tweak)
    members = ["m1", "m2", "m3"]
    wait_until("one group of three", lambda: converged(lab, members))

    def collisions(pod: str) -> int:
        events: dict[str, int] = lab.status(pod)["counters"]["events"]
        return events.get("mac_collision_configured", 0)

    wait_until("m1 and m2 see the collision", lambda: min(collisions("m1"), collisions("m2")) > 0)
    assert collisions("m3") == 0
    # A configured MAC is the operator's choice: it is reported, not re-rolled.
    assert [vlan_status(lab, p)["mac"] for p in ("m1", "m2")] == [same, same]
    assert vlan_status(lab, "m3")["mac"] != same


def test_a_revoked_member_loses_access_once_one_member_has_the_list(
    lab_factory: Callable[..., Lab],
) -> None:
    """Only one member that is not the committer gets the list (its `revocations` file);
    it spreads over the MVLAN, the committer removes m4, and traffic after that commit
    uses keys m4 never held."""
    members = ["m1", "m2", "m3", "m4"]

    def tweak(pod: str, vlan: dict[str, Any]) -> None:
        vlan["revocations"] = "lab.revoked"  # no such file yet: no list

    lab = private_lab(lab_factory, 4, tweak=tweak)
    held: set[str] = set()

    def in_group(pods: list[str]) -> bool:
        view = vlan_status(lab, "m4")
        if view["mls_state"] == "member":
            held.add(view["mls_id"])
        return converged(lab, pods)

    wait_until("one group of four", lambda: in_group(members))
    wait_until("ping m4 -> m2", lambda: pings(lab, "m4", "m2"), 20)
    creator = identity.load(Path(lab.state_dir) / CREATOR_KEY)
    revoked = identity.load(lab.key_path("m4")).public_bytes
    listed = revocation.sign_revocation_list(creator, "lab", [revoked], 1)
    rest = ["m1", "m2", "m3"]
    given = next(p for p in rest if not vlan_status(lab, p)["committer"])
    (lab.config_path(given).parent / "lab.revoked").write_text(revocation.to_text(listed))
    wait_until("m4 removed", lambda: in_group(rest), 30)
    removed_at = time.time()
    # The others had no file: the list reached them over the management VLAN.
    for pod in rest:
        assert lab.status(pod)["counters"]["events"].get("revocation_lists_adopted") == 1
    # m4 cannot get back in: its HELLOs and KeyPackages are refused.
    wait_until("m4's offers refused", lambda: drops(lab, "m2").get("mvlan_rejected_revoked", 0) > 0)
    assert not pings(lab, "m4", "m2", count=2)
    for a, b in (("m1", "m2"), ("m2", "m3"), ("m3", "m1")):
        assert pings(lab, a, b, count=2), f"{a} -> {b}"
    assert converged(lab, rest)
    crossed = [
        rec["mls_id"]
        for rec in map(json.loads, lab.trace_path("r").read_text().splitlines())
        if rec.get("type") == "data" and rec["ts"] > removed_at
    ]
    assert crossed
    assert held
    assert not set(crossed) & held


INSIDER = Path(__file__).resolve().parents[1] / "adversary" / "insider_member.py"


def insider_spec() -> LabSpec:
    """m1 (the insider), m2 and m3 around relay r, and a direct trunk m1 - m3, so what
    m1 sends reaches m3 without the relay's duplicate filter in between."""
    member, relay = NodeRole(role="member"), NodeRole(role="relay")
    return LabSpec(
        pods=[PodSpec(name="r", node=relay)]
        + [PodSpec(name=m, node=member) for m in ("m1", "m2", "m3")],
        links=[LinkSpec(a=m, b="r") for m in ("m1", "m2", "m3")] + [LinkSpec(a="m1", b="m3")],
        bootstrap=[BootstrapSpec(dialer=m, target="r") for m in ("m1", "m2", "m3")]
        + [BootstrapSpec(dialer="m1", target="m3")],
    )


def test_a_member_cannot_send_as_another_members_mac_nor_replay_its_frames(
    lab_factory: Callable[..., Lab], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The members' trunks stay on the reliable stream: the attack is 5,000 packets in one
    # burst, and the test counts each refusal, which lossy UDP under load would not
    # deliver all of (the frame checks are the same on either transport).
    lab = private_lab(
        lab_factory,
        3,
        spec=insider_spec(),
        start=lambda pod: pod != "m1",
        tweak_node=lambda pod, cfg: cfg.setdefault("trunk", {}).update(datagram=False),
    )
    trigger = tmp_path / "replay-now"
    monkeypatch.setenv("PEERTAP_INSIDER_TRIGGER", str(trigger))
    monkeypatch.setenv("PEERTAP_LAB_NODE_CMD", f"{sys.executable} -P {INSIDER} run")
    lab.start_node("m1")
    monkeypatch.delenv("PEERTAP_LAB_NODE_CMD")
    lab.wait_ready(timeout=30, pods=["m1"])
    members = ["m1", "m2", "m3"]
    wait_until("one group of three", lambda: converged(lab, members))
    wait_until("ping m1 -> m3", lambda: pings(lab, "m1", "m3"), 20)
    wait_until("ping m2 -> m3", lambda: pings(lab, "m2", "m3"), 20)

    # 1. m1 takes m2's MAC on its own interface: m3 refuses every frame of it.
    own_mac = vlan_status(lab, "m1")["mac"]
    ifname = vlan_status(lab, "m1")["interface"]
    lab.exec("m1", ["ip", "link", "set", ifname, "address", vlan_status(lab, "m2")["mac"]])
    before = drops(lab, "m3").get("sender_mac", 0)
    lab.exec("m1", ["ip", "neigh", "flush", "dev", ifname])
    assert not pings(lab, "m1", "m3", count=3)
    assert drops(lab, "m3").get("sender_mac", 0) > before
    wait_until("m2 keeps its MAC and its traffic", lambda: pings(lab, "m2", "m3"), 20)
    lab.exec("m1", ["ip", "link", "set", ifname, "address", own_mac])
    wait_until("m1 reaches m3 with its own MAC", lambda: pings(lab, "m1", "m3"), 20)

    # 2. m1 replays m2's broadcasts to m3, after trying to flush m3's replay windows.
    lab.exec("m2", ["ping", "-b", "-c", "20", "-i", "0.1", "-W", "1", "10.250.0.255"])
    windows_before = drops(lab, "m3").get("replay", 0)
    trigger.touch()
    done = Path(str(trigger) + ".done")
    wait_until("m1 to attack", lambda: pings(lab, "m1", "m3") and done.exists(), 20)
    sent = json.loads(done.read_text())
    assert sent["replayed"] >= 20

    def refused() -> bool:
        d = drops(lab, "m3")
        # What m1's own trunk queue dropped under load never reached m3 to be refused.
        unsent = lab.status("m1")["trunk"].get("queue_full", 0)
        return d.get("sender_unknown", 0) >= sent["flush"] - unsent and (
            d.get("replay", 0) - windows_before >= 20
        )

    try:
        wait_until("m3 to refuse the flush attempt and the replays", refused, 30)
    except AssertionError as err:
        seen = {"m3 drops": drops(lab, "m3"), "m1 trunk": lab.status("m1")["trunk"]}
        raise AssertionError(f"{err}: {seen}") from err
    wait_until("m2 still reaches m3", lambda: pings(lab, "m2", "m3"), 20)
    assert converged(lab, members)


def test_a_relay_given_the_list_spreads_it_and_the_revoked_member_is_removed(
    lab_factory: Callable[..., Lab],
) -> None:
    """The list goes to the relay alone (relay.revocations): it is no member, but it
    sends the list over the MVLAN, and the members remove m3."""
    lab = private_lab(lab_factory, 3, start=lambda pod: pod != "r")
    creator = identity.load(Path(lab.state_dir) / CREATOR_KEY)
    cfg_path = lab.config_path("r")
    cfg = json.loads(cfg_path.read_text())
    cfg.setdefault("relay", {})["revocations"] = [
        {"creator": creator.public_hex, "label": "lab", "file": "lab.revoked"}
    ]
    cfg_path.write_text(json.dumps(cfg))
    lab.start_node("r")
    lab.wait_ready(timeout=30, pods=["r"])
    members = ["m1", "m2", "m3"]
    wait_until("one group of three", lambda: converged(lab, members))
    revoked = identity.load(lab.key_path("m3")).public_bytes
    listed = revocation.sign_revocation_list(creator, "lab", [revoked], 1)
    (cfg_path.parent / "lab.revoked").write_text(revocation.to_text(listed))
    # The relay adopts the list first; the members adopt it from the relay. (Waiting for
    # the counters, not only the group: under load a short member timeout may drop m3
    # for a moment on its own.)
    for pod in ("r", "m1", "m2"):
        wait_until(
            f"{pod} adopted the list",
            lambda pod=pod: (
                lab.status(pod)["counters"]["events"].get("revocation_lists_adopted") == 1
            ),
            30,
        )
    wait_until("m3 removed", lambda: converged(lab, ["m1", "m2"]), 30)
    assert pings(lab, "m1", "m2", count=2)
    assert not pings(lab, "m3", "m1", count=2)
