"""The sidecar as the webhook renders it runs unprivileged: user 65532, CAP_NET_ADMIN alone.

Two member pods are emulated as network namespaces (`sidecar_pods`): each runs the exact
command of the injected sidecar container, with the container's capabilities, and the
files the operator decides for it. The TAP comes up and frames cross the VLAN while
`peertap` has uid 65532 and no capability but NET_ADMIN.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from sidecar_pods import (
    CAP_NET_ADMIN,
    UNDERLAY,
    netns_pair,
    peertap_pid,
    pings,
    proc_status,
    start_sidecar,
    vlan_address,
    wait,
    workdir,
    write_projected,
)

from peertap.operator import admission, membership, models, relay, render
from peertap.sidecar import identity

SUBNET = "10.251.7.0/24"


def _pod_files() -> dict[str, dict[str, bytes | str]]:
    """Each pod's projected files, as the operator decides them for a public VLAN whose
    bootstrap peer is b."""
    keys = {p: identity.generate() for p in "ab"}
    spec = {
        "security": "public",
        "interface": {"ipam": {"subnet": SUBNET}},
        "bootstrapPeers": [f"/ip4/{UNDERLAY['b']}/tcp/4001/p2p/{keys['b'].peer_id}"],
    }
    view = membership.VlanView(
        name="lab",
        generation=1,
        raw_spec=spec,
        annotations={},
        status=models.CryptoVLANStatus(),
        authority=identity.generate(),
        stored=membership.StoredVlan(spec=None, allocations={}),
    )
    pods = [
        membership.PodView(name=p, uid=p, labels={"peertap.io/vlans": "lab"}, annotations={})
        for p in "ab"
    ]
    plan = membership.decide(
        membership.Inputs(
            namespace="ns",
            vlans=[view],
            pods=pods,
            members={p: membership.MemberObjects(node_key=keys[p]) for p in "ab"},
            now=dt.datetime.now(dt.UTC),
        ),
        new_identity=identity.generate,
    )
    return {
        mp.key: {
            render.CONFIG_FILE: mp.config,
            render.KEY_FILE: identity.to_pem(mp.node_key),
            **mp.credentials,
        }
        for mp in plan.members
    }


def test_injected_sidecar_runs_as_user_65532_with_net_admin_alone() -> None:
    files = _pod_files()
    with netns_pair() as pods, workdir() as work:
        dirs = {p: write_projected(work / p, files[p]) for p in pods}
        with (
            start_sidecar(pods["a"], dirs["a"], work) as log_a,
            start_sidecar(pods["b"], dirs["b"], work),
        ):
            for pod, ns in pods.items():
                pid = wait(f"peertap in pod {pod}", lambda ns=ns: peertap_pid(ns))
                status = proc_status(pid)
                assert status["Uid"].split() == ["65532"] * 4, log_a.read_text()[-2000:]
                assert status["Gid"].split() == ["65532"] * 4
                assert int(status["CapEff"], 16) == CAP_NET_ADMIN
                assert int(status["CapPrm"], 16) == CAP_NET_ADMIN
                assert status["NoNewPrivs"] == "1"
                wait(f"pt-lab in pod {pod}", lambda ns=ns: vlan_address_or_none(ns))
            # Frames cross the VLAN between the two unprivileged sidecars.
            b_addr = vlan_address(pods["b"], "pt-lab")
            wait("ping a -> b across the VLAN", lambda: pings(pods["a"], b_addr), timeout=90)
            # Still unprivileged after it worked.
            pid_a = peertap_pid(pods["a"])
            assert pid_a is not None and int(proc_status(pid_a)["CapEff"], 16) == CAP_NET_ADMIN


def vlan_address_or_none(ns: str) -> str | None:
    try:
        return vlan_address(ns, "pt-lab")
    except (subprocess.CalledProcessError, IndexError):
        return None


def test_without_net_admin_the_sidecar_exits_with_a_one_line_error() -> None:
    """A sidecar denied CAP_NET_ADMIN (a restrictive policy stripped it) says why and exits;
    the kubelet then reports the container's failure instead of a hung pod."""
    files = _pod_files()
    container = admission.sidecar_container(image="unused")
    container["securityContext"]["capabilities"]["add"] = ["SETGID", "SETUID"]
    container["command"] = [
        a for a in container["command"] if not a.startswith(("--inh-caps", "--ambient-caps"))
    ]
    with netns_pair() as pods, workdir() as work:
        pod_dir = write_projected(work / "a", files["a"])
        with start_sidecar(pods["a"], pod_dir, work, container) as log:
            text = wait(
                "the sidecar to give up",
                lambda: (t := log.read_text()) and "cannot create TAP pt-lab" in t and t,
            )
            wait("the process to exit", lambda: peertap_pid(pods["a"]) is None)
        assert "Traceback" not in log.read_text(), text


def test_a_relay_runs_as_user_65532_with_no_capability() -> None:
    mvlan = {"metadata": {"name": "campus", "namespace": "ns", "uid": "u"}, "kind": "MVLAN"}
    desired = relay.relay_objects(mvlan=mvlan, spec=models.MVLANSpec(), image="unused")
    pod = desired.relays[0].deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # What the runtime applies from the pod's securityContext.
    merged = dict(container)
    merged["securityContext"] = {
        **container["securityContext"],
        "runAsUser": pod["securityContext"]["runAsUser"],
        "runAsGroup": pod["securityContext"]["fsGroup"],
    }
    files = {
        render.CONFIG_FILE: desired.configmap["data"][render.CONFIG_FILE],
        render.KEY_FILE: identity.to_pem(identity.generate()),
    }
    with netns_pair() as pods, workdir() as work:
        pod_dir = write_projected(work / "r", files, group=pod["securityContext"]["fsGroup"])
        with start_sidecar(pods["a"], pod_dir, work, merged) as log:
            pid = wait("the relay", lambda: peertap_pid(pods["a"]) or _exited(log))
            assert isinstance(pid, int), pid
            status = proc_status(pid)
            assert status["Uid"].split() == ["65532"] * 4, log.read_text()[-2000:]
            assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == 0
            wait("the relay ready", lambda: "node ready" in log.read_text())
            assert peertap_pid(pods["a"]) == pid


def _exited(log: Path) -> str | None:
    """The log of a process that stopped with an error (so waiting ends), else None."""
    text = log.read_text()
    return text if "Error" in text or "error" in text else None
