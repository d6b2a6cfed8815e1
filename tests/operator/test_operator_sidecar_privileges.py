"""The sidecar as the webhook renders it runs unprivileged: user 65532, CAP_NET_ADMIN alone.

Two member pods are emulated as network namespaces joined by a veth pair. Each runs the
exact command of the injected sidecar container with what a container runtime would give
it: the container's capability bounding set (NET_ADMIN, SETUID, SETGID), no_new_privs
(`allowPrivilegeEscalation: false`), a 0666 /dev/net/tun, and its files as the projected
volume holds them (mode 0440, owner and group root) with the content the operator decides.
The test proves the TAP comes up and frames cross the VLAN while `peertap` has uid 65532 and
no capability but NET_ADMIN.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peertap.operator import admission, membership, models, render
from peertap.sidecar import identity

CAP_NET_ADMIN = 1 << 12
SUBNET = "10.251.7.0/24"
UNDERLAY = {"a": "192.168.231.1", "b": "192.168.231.2"}


def _inaccessible_ancestor(path: Path) -> Path | None:
    """The topmost directory above `path` that other users cannot traverse."""
    for parent in reversed(path.parents):
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return parent
    return None


@pytest.fixture
def pods() -> Iterator[dict[str, str]]:
    """Two network namespaces a and b (unique names) on a veth pair; removed afterwards."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("unshare") is None:
        pytest.skip("needs root and util-linux (setpriv, unshare)")
    tag = secrets.token_hex(3)
    names = {"a": f"ptpriv-{tag}-a", "b": f"ptpriv-{tag}-b"}
    try:
        for ns in names.values():
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            [
                *("ip", "link", "add", f"pv{tag}a", "netns", names["a"], "type", "veth"),
                *("peer", f"pv{tag}b", "netns", names["b"]),
            ],
            check=True,
        )
        for side in "ab":
            dev = f"pv{tag}{side}"
            ns = names[side]
            subprocess.run(
                ["ip", "-n", ns, "addr", "add", f"{UNDERLAY[side]}/24", "dev", dev], check=True
            )
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        yield names
    finally:
        for ns in names.values():
            pids = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
            ).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], check=False)
            subprocess.run(["ip", "netns", "del", ns], check=False)


def _pod_files(work: Path) -> tuple[dict[str, Path], dict[str, identity.Identity]]:
    """Each pod's projected files, as the operator decides them for a public VLAN whose
    bootstrap peer is b."""
    keys = {p: identity.generate() for p in "ab"}
    authority = identity.generate()
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
        authority=authority,
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
    dirs = {}
    for mp in plan.members:
        d = work / mp.key
        d.mkdir(mode=0o755)
        files = {render.CONFIG_FILE: mp.config, render.KEY_FILE: identity.to_pem(mp.node_key)}
        files.update(mp.credentials)
        for name, content in files.items():
            path = d / name
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
            # What the projected volume holds: owner and group root, mode 0440.
            path.chmod(0o440)
        dirs[mp.key] = d
    return dirs, keys


def _container_script(ns: str, pod_dir: Path, work: Path) -> str:
    """A shell script that runs the rendered sidecar command as a runtime would."""
    container = admission.sidecar_container(image="unused")
    caps = container["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"]
    bounding = "-all," + ",".join("+" + c.lower() for c in caps["add"])
    command = [a.replace(admission.CONFIG_DIR, str(pod_dir)) for a in container["command"]]
    venv_bin = Path(sys.executable).parent
    lines = ["set -e"]
    # The interpreter may live below a directory only root may enter (e.g. /root): show the
    # unprivileged user that one subtree, in this private mount namespace only.
    base = Path(os.path.realpath(sys.base_prefix))
    hidden = _inaccessible_ancestor(base)
    if hidden is not None:
        rel = base.relative_to(hidden)
        hold = work / "hold"
        lines += [
            f"mkdir -p {hold}",
            f"mount --bind {hidden}/{rel.parts[0]} {hold}",
            f"mount -t tmpfs -o mode=0755 tmpfs {hidden}",
            f"mkdir -p {hidden}/{rel.parts[0]}",
            f"mount --bind {hold} {hidden}/{rel.parts[0]}",
        ]
    tun = work / f"tun-{ns}"
    lines += [
        # A container runtime gives the sidecar a /dev/net/tun the user can open (0666).
        f"mknod -m 0666 {tun} c 10 200",
        f"mount --bind {tun} /dev/net/tun",
        f"exec ip netns exec {ns} setpriv --bounding-set={bounding} --no-new-privs -- "
        f"env PATH={venv_bin}:/usr/sbin:/usr/bin:/sbin:/bin PYTHONSAFEPATH=1 "
        + shlex.join(command),
    ]
    return "\n".join(lines)


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _peertap_pid(ns: str) -> int | None:
    pids = subprocess.run(
        ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"peertap") for part in cmdline) and b"run" in cmdline:
            return int(pid)
    return None


def _wait(what: str, probe: object, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()  # type: ignore[operator]
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_injected_sidecar_runs_as_user_65532_with_net_admin_alone(
    pods: dict[str, str],
) -> None:
    work = Path(tempfile.mkdtemp(prefix="ptpriv-", dir="/tmp"))
    work.chmod(0o755)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        dirs, _ = _pod_files(work)
        logs = {}
        for pod, ns in pods.items():
            script = work / f"{pod}.sh"
            script.write_text(_container_script(ns, dirs[pod], work))
            logs[pod] = work / f"{pod}.log"
            with logs[pod].open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        ["unshare", "--mount", "--propagation", "private", "sh", str(script)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        for pod, ns in pods.items():
            pid = _wait(f"peertap in pod {pod}", lambda ns=ns: _peertap_pid(ns))
            assert isinstance(pid, int)
            status = _status(pid)
            assert status["Uid"].split() == ["65532"] * 4, logs[pod].read_text()[-2000:]
            assert status["Gid"].split() == ["65532"] * 4
            assert int(status["CapEff"], 16) == CAP_NET_ADMIN
            assert int(status["CapPrm"], 16) == CAP_NET_ADMIN
            assert status["NoNewPrivs"] == "1"
            _wait(
                f"pt-lab in pod {pod}",
                lambda ns=ns: (
                    subprocess.run(
                        ["ip", "-n", ns, "addr", "show", "pt-lab"], capture_output=True, check=False
                    ).returncode
                    == 0
                ),
            )
        # Frames cross the VLAN between the two unprivileged sidecars.
        b_addr = (
            subprocess.run(
                ["ip", "-n", pods["b"], "-4", "-o", "addr", "show", "pt-lab"],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.split()[3]
            .split("/")[0]
        )
        _wait(
            "ping a -> b across the VLAN",
            lambda: (
                subprocess.run(
                    ["ip", "netns", "exec", pods["a"], "ping", "-c1", "-W1", b_addr],
                    capture_output=True,
                    check=False,
                ).returncode
                == 0
            ),
            timeout=90,
        )
        # Still unprivileged after it worked.
        pid_a = _peertap_pid(pods["a"])
        assert pid_a is not None and int(_status(pid_a)["CapEff"], 16) == CAP_NET_ADMIN
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
