"""A local cluster: a real control plane, its pod network, a kubelet, the Service rules.

    with Fabric(prefix) as the network:
        cluster = LocalCluster.start(fabric, index=1, name="east", workdir=...)
        cluster.kubectl("apply", "-f", ...)
        cluster.install_chart(...)

The control plane is `tests/kube/controlplane.py`'s (etcd, kube-apiserver,
kube-controller-manager). `ServiceProxy` keeps one nftables table for all clusters
of a fabric in step with their Services and EndpointSlices.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import services
from .api import Api
from .door import ApiDoor
from .fabric import HOST_ADDR, Fabric
from .kubelet import Kubelet

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

from kube.controlplane import ControlPlane  # noqa: E402

log = logging.getLogger("localkube.cluster")
CHART = REPO / "helm" / "peertap"
RELEASE = "peertap"
RELEASE_NAMESPACE = "peertap-system"
# Images the kubelet maps to this machine's programs (runtime.IMAGES).
LOCAL_IMAGES = {
    "operator.image.repository": "peertap-operator",
    "operator.image.tag": "local",
    "sidecar.image.repository": "peertap-sidecar",
    "sidecar.image.tag": "local",
}


@dataclass
class LocalCluster:
    name: str
    index: int
    control_plane: ControlPlane
    api: Api
    kubelet: Kubelet
    door: ApiDoor
    service_cidr: str

    @classmethod
    def start(cls, fabric: Fabric, *, index: int, name: str, workdir: Path) -> LocalCluster:
        service_cidr = f"10.{95 + index}.0.0/16"
        cp = ControlPlane.start(workdir, name, service_cidr=service_cidr)
        try:
            fabric.add_segment(index, service_cidr=service_cidr)
            host, port = cp.server.removeprefix("https://").rsplit(":", 1)
            door = ApiDoor(listen_host=HOST_ADDR, target_host=host, target_port=int(port))
            door.start()
            api = Api(str(cp.kubeconfig))
            kubelet = Kubelet(
                api=api,
                fabric=fabric,
                index=index,
                node_name=f"{name}-node",
                workdir=workdir / name,
                api_door=f"{HOST_ADDR}:{door.port}",
            )
            kubelet.start()
        except BaseException:
            cp.stop()
            raise
        return cls(name, index, cp, api, kubelet, door, service_cidr)

    @property
    def kubeconfig(self) -> str:
        return str(self.control_plane.kubeconfig)

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> str:
        result = subprocess.run(
            ["kubectl", "--kubeconfig", self.kubeconfig, *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} ({self.name}): {result.stderr.strip()}")
        return result.stdout

    def install_chart(self, *, timeout: int = 180) -> None:
        """`helm install peertap helm/peertap -n peertap-system --create-namespace --wait`,
        with Helm's own engine, images set to the ones the kubelet maps."""
        import helm_python as helm

        values: dict[str, Any] = {}
        for dotted, value in LOCAL_IMAGES.items():
            node = values
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        if not _tun_open_to_all():
            # A sidecar dropping to an unprivileged user opens /dev/net/tun through its
            # file mode; most distributions ship it 0666, this machine's is narrower, so
            # the local clusters keep the sidecar's user root (still NET_ADMIN only).
            values.setdefault("sidecar", {})["runAsUser"] = 0
        with helm.Config(kubeconfig_path=self.kubeconfig, namespace=RELEASE_NAMESPACE) as cfg:
            cfg.install(
                str(CHART),
                RELEASE,
                values,
                namespace=RELEASE_NAMESPACE,
                create_namespace=True,
                wait="watcher",
                timeout=timeout,
            )

    def view(self) -> services.ClusterView:
        return services.ClusterView(
            bridge=self.kubelet.fabric.segments[self.index].bridge,
            node_address=self.kubelet.node_address,
            services=self.api.items("/api/v1/services"),
            endpoint_slices=self.api.items("/apis/discovery.k8s.io/v1/endpointslices"),
            api_door=self.kubelet.api_door,
        )

    def stop(self) -> None:
        self.kubelet.stop()
        self.door.stop()
        self.control_plane.stop()


class ServiceProxy:
    """Re-renders the fabric's Service rules every second; applies them when they change."""

    def __init__(self, fabric: Fabric, clusters: Sequence[LocalCluster]) -> None:
        self.fabric = fabric
        self.clusters = list(clusters)
        self._stop = threading.Event()
        self._applied = ""
        self._thread = threading.Thread(target=self._loop, name="service-proxy", daemon=True)

    def start(self) -> None:
        self.sync()
        self._thread.start()

    def sync(self) -> None:
        text = services.ruleset([c.view() for c in self.clusters])
        if text != self._applied:
            self.fabric.apply_rules(text)
            self._applied = text

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.sync()
            except Exception as err:
                # Keep going: the next Service change may well apply.
                log.warning("service rules not updated: %s", err)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def _tun_open_to_all() -> bool:
    """Whether any user may open /dev/net/tun (mode o+rw), as an unprivileged sidecar must."""
    try:
        mode = os.stat("/dev/net/tun").st_mode
    except OSError:
        return False
    return mode & 0o006 == 0o006
