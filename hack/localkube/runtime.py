"""Containers -> processes: which program an image stands for, its argv, env and files.

Images are mapped to this machine's programs: PeerTap's operator and sidecar images
to the virtualenv's entry points (the Dockerfiles' ENTRYPOINT/CMD), busybox to the
host's tools. A container's `command`/`args` keep their Kubernetes meaning ($(VAR)
expansion, args replacing the image's CMD). Paths under a volume's mountPath, in
argv and env, are mapped to where `volumes` wrote that volume. The service account
token mount cannot be mapped for the Kubernetes client (it reads fixed paths), so
the container gets KUBECONFIG naming the same token and CA, and the API server at
the `kubernetes` Service's address, which the Service rules lead to the API server.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peertap.sidecar.lab.netns import ns_argv

from .volumes import field_value

JsonObj = Mapping[str, Any]
VENV_BIN = Path(sys.executable).parent
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


class ImageUnknown(Exception):
    """No program on this machine stands for the container (its image, or an env source
    this stand-in does not resolve)."""


@dataclass(frozen=True)
class Image:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()


# Image repository (last path element, tag dropped) -> what its Dockerfile runs.
IMAGES: dict[str, Image] = {
    "peertap-operator": Image(("python", "-m", "peertap.operator")),
    "peertap-sidecar": Image(("peertap",), ("run", "--config", "/etc/peertap/node.json")),
    "busybox": Image(()),
}


def image_of(ref: str) -> Image:
    repo = ref.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    if repo not in IMAGES:
        raise ImageUnknown(f"image {ref}: no local program stands for {repo}")
    return IMAGES[repo]


def program(name: str) -> str:
    """The virtualenv's program of that name, else the host's."""
    if name == "python":
        return sys.executable
    local = VENV_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ImageUnknown(f"no program {name} on this machine")
    return found


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes $(VAR) expansion; $$ escapes, unknown references stay as written."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text.replace("$$", "\0")).replace(
        "\0", "$"
    )


def map_paths(text: str, mounts: Mapping[str, Path]) -> str:
    """Rewrite a path under a mountPath (alone or after `=`) to its host location."""
    for mount_path in sorted(mounts, key=len, reverse=True):
        host = str(mounts[mount_path])
        for lead in ("", "="):
            token = lead + mount_path
            if text == mount_path or text.startswith(mount_path + "/"):
                return host + text[len(mount_path) :]
            if lead and token in text:
                head, _, tail = text.partition(token)
                if tail == "" or tail.startswith("/"):
                    return head + "=" + host + tail
    return text


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def container_env(
    pod: JsonObj, container: JsonObj, *, service_env: Mapping[str, str]
) -> dict[str, str]:
    env: dict[str, str] = {
        "PATH": f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOSTNAME": pod["metadata"]["name"],
        "PYTHONSAFEPATH": "1",
        **service_env,
    }
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
        elif "fieldRef" in (item.get("valueFrom") or {}):
            env[item["name"]] = field_value(pod, item["valueFrom"]["fieldRef"]["fieldPath"])
        else:
            raise ImageUnknown(f"env {item['name']}: only values and fieldRefs are supported here")
    return env


def launch(
    pod: JsonObj,
    container: JsonObj,
    *,
    volumes: Mapping[str, Path],
    container_dir: Path,
    service_env: Mapping[str, str],
    kubeconfig: Path | None,
) -> Launch:
    image = image_of(container.get("image", ""))
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in volumes:
            continue
        host = volumes[mount["name"]]
        if mount.get("subPath"):
            host = host / mount["subPath"]
        mounts[mount["mountPath"]] = host
    env = container_env(pod, container, service_env=service_env)
    argv_k8s = [*(container.get("command") or image.entrypoint)]
    argv_k8s += container.get("args") or ([] if container.get("command") else list(image.cmd))
    if not argv_k8s:
        raise ImageUnknown(f"container {container['name']}: nothing to run")
    argv = [map_paths(expand(a, env), mounts) for a in argv_k8s]
    argv[0] = program(argv[0])
    env = {k: map_paths(v, mounts) for k, v in env.items()}
    if kubeconfig is not None and SA_MOUNT in mounts:
        # A host path already: added after the mapping (a mount at /tmp would catch it).
        env["KUBECONFIG"] = str(kubeconfig)
    container_dir.mkdir(parents=True, exist_ok=True)
    return Launch(argv=argv, env=env, cwd=container_dir)


def start(launch_: Launch, *, pod_ns: str, log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            ns_argv(pod_ns, launch_.argv),
            env=launch_.env,
            cwd=launch_.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def service_account_kubeconfig(directory: Path, *, server: str) -> str:
    """A kubeconfig with the token and CA file the service account volume holds."""
    token = (directory / "token").read_text().strip()
    return "\n".join(
        [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            f"- name: in-cluster\n  cluster:\n    server: {server}",
            f"    certificate-authority: {directory / 'ca.crt'}",
            "users:",
            f"- name: sa\n  user:\n    token: {token}",
            "contexts:",
            "- name: in-cluster\n  context:\n    cluster: in-cluster\n    user: sa",
            "current-context: in-cluster",
            "",
        ]
    )
