"""Private VLANs end to end: real `peertap run` processes in network namespaces, MLS groups
formed over the management VLAN through a relay, real TAPs; assertions on what crosses."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peertap.sidecar import authority, identity, ids
from peertap.sidecar.lab import Lab, topology
from peertap.sidecar.lab.nodes import CREATOR_KEY

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


def private_lab(
    lab_factory: Callable[..., Lab],
    members: int,
    *,
    credential_for: Callable[[str, identity.Identity, bytes], bytes] | None = None,
) -> Lab:
    """A star whose VLAN is private: every member gets a credential from the lab's creator
    (or from `credential_for(pod, creator, member_key)`), then the nodes start."""
    lab = lab_factory(topology("star", members=members), start_nodes=False)
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
        cfg_path.write_text(json.dumps(cfg))
    for pod in lab.pods:
        lab.start_node(pod)
    lab.wait_ready(timeout=30)
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
    before = drops(lab, "m1").get("unknown_epoch", 0)
    for bad in ("m3", "m4"):
        assert vlan_status(lab, bad)["mls_state"] == "joining"
        assert not pings(lab, bad, "m1", count=2)
    assert drops(lab, "m1").get("unknown_epoch", 0) > before
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
