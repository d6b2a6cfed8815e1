"""Member pods emulated as network namespaces running the sidecar container as rendered.

`netns_pair` makes two network namespaces joined by a veth pair (unique names, removed
afterwards, with every process left in them). `start_sidecar` runs the exact command of
the injected sidecar container with what a container runtime would give it: the
container's capability bounding set, no_new_privs (`allowPrivilegeEscalation: false`), a
0666 /dev/net/tun, and the pod's files as its projected volume holds them (mode 0440,
owner and group root).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from peertap.operator import admission

CAP_NET_ADMIN = 1 << 12
UNDERLAY = {"a": "192.168.231.1", "b": "192.168.231.2"}


def _inaccessible_ancestor(path: Path) -> Path | None:
    """The topmost directory above `path` that other users cannot traverse."""
    for parent in reversed(path.parents):
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return parent
    return None


@contextlib.contextmanager
def netns_pair() -> Iterator[dict[str, str]]:
    """Network namespaces a and b on a veth pair (underlay addresses UNDERLAY)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("unshare") is None:
        pytest.skip("needs root and util-linux (setpriv, unshare)")
    tag = secrets.token_hex(3)
    names = {"a": f"ptpod-{tag}-a", "b": f"ptpod-{tag}-b"}
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


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A scratch directory every user can traverse (pytest's tmp_path is root-only)."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="ptpod-", dir="/tmp"))
    work.chmod(0o755)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_projected(directory: Path, files: Mapping[str, bytes | str], *, group: int = 0) -> Path:
    """The files as a projected volume holds them: owner root, group root (or the pod's
    fsGroup), mode 0440."""
    directory.mkdir(mode=0o755)
    for name, content in files.items():
        path = directory / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        os.chown(path, 0, group)
        path.chmod(0o440)
    return directory


def _container_script(ns: str, pod_dir: Path, work: Path, container: Mapping[str, Any]) -> str:
    """A shell script that runs the rendered sidecar command as a runtime would."""
    caps = container["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"]
    bounding = "-all" + "".join(",+" + c.lower() for c in caps.get("add", []))
    # The mount point /etc/peertap does not exist on the host: the pod directory stands in.
    command = [a.replace(admission.CONFIG_DIR, str(pod_dir)) for a in container["command"]]
    runtime = ["setpriv", f"--bounding-set={bounding}", "--no-new-privs"]
    user = container["securityContext"].get("runAsUser", 0)
    if user:
        # runAsUser and the pod's fsGroup: the runtime starts the process as that user,
        # its files readable through the group, with no capability.
        group = container["securityContext"].get("runAsGroup", user)
        runtime += [f"--reuid={user}", f"--regid={group}", f"--groups={group}"]
        runtime += ["--inh-caps=-all"]
    venv_bin = Path(sys.executable).parent
    lines = ["set -e"]
    # The interpreter may live below a directory only root may enter (e.g. /root): show the
    # unprivileged user that one subtree, in this private mount namespace only.
    base = Path(os.path.realpath(sys.base_prefix))
    hidden = _inaccessible_ancestor(base)
    if hidden is not None:
        top = base.relative_to(hidden).parts[0]
        hold = work / f"hold-{ns}"
        lines += [
            f"mkdir -p {hold}",
            f"mount --bind {hidden}/{top} {hold}",
            f"mount -t tmpfs -o mode=0755 tmpfs {hidden}",
            f"mkdir -p {hidden}/{top}",
            f"mount --bind {hold} {hidden}/{top}",
        ]
    tun = work / f"tun-{ns}"
    lines += [
        # A container runtime gives the sidecar a /dev/net/tun the user can open (0666).
        f"mknod -m 0666 {tun} c 10 200",
        f"mount --bind {tun} /dev/net/tun",
        f"exec ip netns exec {ns} {shlex.join(runtime)} -- "
        f"env PATH={venv_bin}:/usr/sbin:/usr/bin:/sbin:/bin PYTHONSAFEPATH=1 "
        + shlex.join(command),
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def start_sidecar(
    ns: str, pod_dir: Path, work: Path, container: Mapping[str, Any] | None = None
) -> Iterator[Path]:
    """Run the sidecar container (default: as the webhook renders it) in `ns`; yields its log."""
    rendered = container or admission.sidecar_container(image="unused")
    script = work / f"{ns}.sh"
    script.write_text(_container_script(ns, pod_dir, work, rendered))
    log_path = work / f"{ns}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", str(script)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log_path
    finally:
        proc.kill()
        proc.wait(timeout=10)


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def peertap_pid(ns: str) -> int | None:
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


def wait(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def vlan_address(ns: str, interface: str) -> str:
    out = subprocess.run(
        ["ip", "-n", ns, "-4", "-o", "addr", "show", interface],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[3].split("/")[0]


def pings(ns: str, address: str) -> bool:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "ping", "-c1", "-W1", address],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0
