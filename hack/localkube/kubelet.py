"""A kubelet stand-in: one Node per cluster, every Pod bound to it run as processes.

Loop (every second): bind Pods that have no node (trivial scheduling: the Binding
subresource, as kube-scheduler does), start a `PodWorker` for each new Pod of this
node, stop the workers of Pods that are being deleted or gone. A worker:

    namespace + eth0 on the pod network -> volumes as files (waits while a ConfigMap or
    Secret is missing) -> init containers (restartPolicy Always ones keep running: native
    sidecars) -> containers -> supervise: restart what exits, HTTP readiness probes,
    refresh ConfigMap/Secret files -> status (phase, podIP, conditions, containerStatuses)

A Pod being deleted gets SIGTERM, then SIGKILL after its grace period, loses its
namespace, and is removed from the API (delete with grace 0), as the kubelet does.
The Node's Lease is renewed so the node lifecycle controller keeps it Ready.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import runtime, volumes
from .api import Api, ApiError
from .fabric import Fabric, write_hosts

log = logging.getLogger("localkube.kubelet")
JsonObj = dict[str, Any]
SYNC_S = 1.0
REFRESH_S = 5.0
LEASE_S = 10.0


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    launch: runtime.Launch
    started_at: str
    restarts: int = 0
    ready: bool = False
    last_probe: float = 0.0
    sidecar: bool = False
    exited_at: float | None = None
    probes: int = 0
    passes: int = 0
    failures: int = 0


@dataclass
class PodWorker:
    kubelet: Kubelet
    pod: JsonObj
    netns: str
    address: str
    directory: Path
    stop: threading.Event = field(default_factory=threading.Event)
    containers: dict[str, Running] = field(default_factory=dict)
    init_done: list[str] = field(default_factory=list)
    waiting: str = "ContainerCreating"
    message: str = ""
    last_status: JsonObj = field(default_factory=dict)
    thread: threading.Thread | None = None

    @property
    def key(self) -> str:
        meta = self.pod["metadata"]
        return f"{meta['namespace']}/{meta['name']}"

    def path(self, sub: str = "") -> str:
        meta = self.pod["metadata"]
        return f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}{sub}"

    # -- life cycle ---------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s: worker failed", self.key)
        finally:
            self._stop_all(grace=self.grace())

    def grace(self) -> float:
        spec = self.pod.get("spec") or {}
        return float(min(spec.get("terminationGracePeriodSeconds", 30) or 0, 10))

    def _run(self) -> None:
        k = self.kubelet
        k.fabric.attach_pod(k.index, self.netns, self.address)
        write_hosts(self.netns, k.service_names)
        self._report()
        mounts: dict[str, Path] | None = None
        while mounts is None and not self.stop.is_set():
            try:
                mounts = volumes.materialize(k.api, self.pod, self.directory, with_tokens=True)
            except volumes.NotReadyYet as err:
                self.message = str(err)
                self._report()
                self.stop.wait(SYNC_S)
        if mounts is None:
            return
        self.message = ""
        spec = self.pod.get("spec") or {}
        for c in spec.get("initContainers") or []:
            sidecar = c.get("restartPolicy") == "Always"
            if not self._start(c, mounts, sidecar=sidecar):
                return
            if sidecar:
                # The next container starts once a native sidecar's startup probe passed.
                self._await_startup(c)
            else:
                code = self.containers[c["name"]].proc.wait()
                if code != 0:
                    self.message = f"init container {c['name']} exited with {code}"
                    self._report()
                    return
                self.init_done.append(c["name"])
                del self.containers[c["name"]]
        for c in spec.get("containers") or []:
            if not self._start(c, mounts, sidecar=False):
                return
        self.waiting = ""
        last_refresh = time.monotonic()
        while not self.stop.is_set():
            self._supervise(mounts)
            if time.monotonic() - last_refresh > REFRESH_S:
                write_hosts(self.netns, k.service_names)
                with contextlib.suppress(volumes.NotReadyYet, ApiError):
                    volumes.materialize(k.api, self.pod, self.directory, with_tokens=False)
                last_refresh = time.monotonic()
            self._report()
            self.stop.wait(SYNC_S / 2)

    def _start(self, container: JsonObj, mounts: Mapping[str, Path], *, sidecar: bool) -> bool:
        k = self.kubelet
        cdir = self.directory / "containers" / container["name"]
        kubeconfig = None
        sa_volume = next(
            (
                m["name"]
                for m in container.get("volumeMounts") or []
                if m["mountPath"] == runtime.SA_MOUNT
            ),
            None,
        )
        if sa_volume is not None and sa_volume in mounts:
            kubeconfig = cdir / "kubeconfig"
            cdir.mkdir(parents=True, exist_ok=True)
            kubeconfig.write_text(
                runtime.service_account_kubeconfig(mounts[sa_volume], server=k.in_cluster_server())
            )
        try:
            launch = runtime.launch(
                self.pod,
                container,
                volumes=mounts,
                container_dir=cdir,
                service_env=k.service_env(),
                kubeconfig=kubeconfig,
            )
        except runtime.ImageUnknown as err:
            self.waiting, self.message = "ErrImagePull", str(err)
            self._report()
            return False
        proc = runtime.start(launch, pod_ns=self.netns, log=self.log_path(container["name"]))
        self.containers[container["name"]] = Running(
            container["name"], proc, launch, now(), sidecar=sidecar
        )
        log.info("pod %s: started %s (pid %d)", self.key, container["name"], proc.pid)
        return True

    def _await_startup(self, container: JsonObj) -> None:
        probe = container.get("startupProbe")
        if probe is None:
            return
        period = float(probe.get("periodSeconds") or 10)
        tries = int(probe.get("failureThreshold") or 3)
        timeout = float(probe.get("timeoutSeconds") or 1)
        for _ in range(tries):
            if self.stop.is_set() or self._probe(container, probe, timeout=timeout):
                return
            self.stop.wait(period)
        log.warning("pod %s: %s never passed its startup probe", self.key, container["name"])

    def log_path(self, container: str) -> Path:
        return self.directory / "logs" / f"{container}.log"

    def _supervise(self, mounts: Mapping[str, Path]) -> None:
        for running in self.containers.values():
            code = running.proc.poll()
            if code is not None:
                # CrashLoopBackOff: 1, 2, 4 ... 30 s between restarts.
                if running.exited_at is None:
                    running.exited_at = time.monotonic()
                    running.ready = False
                    log.info("pod %s: %s exited with %s", self.key, running.name, code)
                if time.monotonic() - running.exited_at < min(2**running.restarts, 30):
                    continue
                running.exited_at = None
                running.proc = runtime.start(
                    running.launch, pod_ns=self.netns, log=self.log_path(running.name)
                )
                running.restarts += 1
                running.ready = False
                running.probes = running.passes = running.failures = 0
                running.started_at = now()
                continue
            probe = self._container(running.name).get("readinessProbe")
            if probe is None:
                running.ready = True
                continue
            # As the kubelet: every periodSeconds, each try given timeoutSeconds; ready after
            # successThreshold passes in a row, not ready after failureThreshold failures.
            period = float(probe.get("periodSeconds") or 10)
            if running.probes and time.monotonic() - running.last_probe < period:
                continue
            running.last_probe = time.monotonic()
            timeout = float(probe.get("timeoutSeconds") or 1)
            if self._probe(self._container(running.name), probe, timeout=timeout):
                running.passes, running.failures = running.passes + 1, 0
                if running.passes >= int(probe.get("successThreshold") or 1):
                    running.ready = True
            else:
                running.passes, running.failures = 0, running.failures + 1
                if running.failures >= int(probe.get("failureThreshold") or 3):
                    running.ready = False
            running.probes += 1

    def _container(self, name: str) -> JsonObj:
        spec = self.pod.get("spec") or {}
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            if c["name"] == name:
                return dict(c)
        return {}

    def _probe(self, container: JsonObj, probe: JsonObj, *, timeout: float) -> bool:
        get = probe.get("httpGet")
        if get is None:
            return True  # exec and tcpSocket probes: running counts as ready here
        port = get.get("port")
        if isinstance(port, str) and not port.isdigit():
            port = next(
                (p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port),
                None,
            )
        url = f"{get.get('scheme', 'HTTP').lower()}://{self.address}:{port}{get.get('path', '/')}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                return 200 <= int(answer.status) < 400
        except (OSError, ValueError):
            return False

    def _stop_all(self, *, grace: float) -> None:
        procs = [r.proc for r in self.containers.values() if r.proc.poll() is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.kubelet.fabric.detach_pod(self.netns)

    # -- status -------------------------------------------------------------

    def status(self) -> JsonObj:
        spec = self.pod.get("spec") or {}

        def entry(c: JsonObj) -> JsonObj:
            running = self.containers.get(c["name"])
            base = {"name": c["name"], "image": c.get("image", ""), "imageID": ""}
            if running is None:
                done = c["name"] in self.init_done
                state: JsonObj = (
                    {"terminated": {"exitCode": 0, "reason": "Completed"}}
                    if done
                    else {
                        "waiting": {
                            "reason": self.waiting or "PodInitializing",
                            "message": self.message,
                        }
                    }
                )
                return {**base, "ready": done, "started": False, "restartCount": 0, "state": state}
            if running.exited_at is not None:
                waiting = {"reason": "CrashLoopBackOff", "message": "the process exited"}
                return {
                    **base,
                    "ready": False,
                    "started": False,
                    "restartCount": running.restarts,
                    "state": {"waiting": waiting},
                }
            return {
                **base,
                "ready": running.ready,
                "started": True,
                "restartCount": running.restarts,
                "state": {"running": {"startedAt": running.started_at}},
            }

        init = [entry(c) for c in spec.get("initContainers") or []]
        main = [entry(c) for c in spec.get("containers") or []]
        all_ready = (
            bool(main)
            and all(e["ready"] for e in main)
            and all(
                e["ready"]
                for e in init
                if self._container(e["name"]).get("restartPolicy") == "Always"
            )
        )
        started = bool(main) and all(e["started"] for e in main)
        initialized = all(e["ready"] or e["started"] for e in init)
        t = now()

        def cond(kind: str, ok: bool) -> JsonObj:
            return {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": t}

        return {
            "phase": "Running" if started else "Pending",
            "hostIP": self.kubelet.node_address,
            "podIP": self.address,
            "podIPs": [{"ip": self.address}],
            "startTime": self.pod["metadata"].get("creationTimestamp", t),
            "conditions": [
                cond("PodScheduled", True),
                cond("Initialized", initialized),
                cond("ContainersReady", all_ready),
                cond("Ready", all_ready),
            ],
            "initContainerStatuses": init,
            "containerStatuses": main,
        }

    def _report(self) -> None:
        status = self.status()

        def comparable(s: JsonObj) -> JsonObj:
            return {
                **s,
                "conditions": [
                    {k: v for k, v in c.items() if k != "lastTransitionTime"}
                    for c in s["conditions"]
                ],
            }

        if self.last_status and comparable(status) == comparable(self.last_status):
            return
        # Keep transition times of conditions whose status did not change.
        before = {c["type"]: c for c in self.last_status.get("conditions", [])}
        for c in status["conditions"]:
            old = before.get(c["type"])
            if old is not None and old["status"] == c["status"]:
                c["lastTransitionTime"] = old["lastTransitionTime"]
        try:
            self.kubelet.api.merge_patch(self.path("/status"), {"status": status})
            self.last_status = status
        except ApiError as err:
            if err.status != 404:
                log.warning("pod %s: status not written: %s", self.key, err)


class Kubelet:
    """Runs every Pod of one cluster on its one node."""

    def __init__(
        self,
        *,
        api: Api,
        fabric: Fabric,
        index: int,
        node_name: str,
        workdir: Path,
        api_door: str,
    ) -> None:
        self.api = api
        self.fabric = fabric
        self.index = index
        self.node_name = node_name
        self.workdir = workdir
        self.api_door = api_door
        self.node_address = fabric.segments[index].gateway
        self.workers: dict[str, PodWorker] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._service_env: dict[str, str] = {}
        self._last_lease = 0.0
        self.service_names: dict[str, str] = {}

    # -- the node -------------------------------------------------------------

    def register(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux"},
            },
        }
        with contextlib.suppress(ApiError):
            self.api.call("POST", "/api/v1/nodes", node)
        self._node_status()

    def _node_status(self) -> None:
        t = now()
        status = {
            "addresses": [
                {"type": "InternalIP", "address": self.node_address},
                {"type": "Hostname", "address": self.node_name},
            ],
            "capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "24Gi", "pods": "110"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "localkube kubelet is posting ready status",
                    "lastHeartbeatTime": t,
                    "lastTransitionTime": t,
                }
            ],
            "nodeInfo": {
                "kubeletVersion": "localkube",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        self.api.merge_patch(f"/api/v1/nodes/{self.node_name}/status", {"status": status})

    def _renew_lease(self) -> None:
        if time.monotonic() - self._last_lease < LEASE_S:
            return
        self._last_lease = time.monotonic()
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node_name}"
        micro = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": 40,
                "renewTime": micro,
            },
        }
        try:
            if self.api.get(path) is None:
                self.api.call("POST", path.rsplit("/", 1)[0], body)
            else:
                self.api.merge_patch(path, {"spec": body["spec"]})
            self._node_status()
        except ApiError as err:
            log.warning("node %s: lease not renewed: %s", self.node_name, err)

    # -- what containers see --------------------------------------------------

    def in_cluster_server(self) -> str:
        """The API server as pods name it: the `kubernetes` Service (a name its certificate
        holds; the pod's hosts file maps it to the Service's address)."""
        return "https://kubernetes.default.svc:443"

    def service_env(self) -> dict[str, str]:
        if not self._service_env:
            svc = self.api.get("/api/v1/namespaces/default/services/kubernetes")
            self._service_env = {
                "KUBERNETES_SERVICE_HOST": ((svc or {}).get("spec") or {}).get("clusterIP", ""),
                "KUBERNETES_SERVICE_PORT": "443",
            }
        return self._service_env

    def refresh_service_names(self) -> None:
        """Service DNS names -> cluster IPs, for the pods' hosts files (a cluster DNS stand-in)."""
        names: dict[str, str] = {}
        for svc in self.api.items("/api/v1/services"):
            meta, ip = svc["metadata"], (svc.get("spec") or {}).get("clusterIP")
            if not ip or ip == "None":
                continue
            base = f"{meta['name']}.{meta['namespace']}.svc"
            names[base] = names[base + ".cluster.local"] = ip
            if meta["namespace"] == "default" and meta["name"] == "kubernetes":
                names["kubernetes.default"] = names["kubernetes"] = ip
        self.service_names = names

    # -- the loop -------------------------------------------------------------

    def start(self) -> None:
        self.register()
        self._thread = threading.Thread(
            target=self._loop, name=f"kubelet-{self.index}", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
                self._renew_lease()
            except Exception:
                log.exception("kubelet %s: sync failed", self.node_name)
            self._stop.wait(SYNC_S)

    def sync(self) -> None:
        self.refresh_service_names()
        pods = self.api.items("/api/v1/pods")
        seen = set()
        for pod in pods:
            meta, spec = pod["metadata"], pod.get("spec") or {}
            uid = meta["uid"]
            if not spec.get("nodeName"):
                if not meta.get("deletionTimestamp"):
                    self._bind(pod)
                continue
            if spec["nodeName"] != self.node_name:
                continue
            seen.add(uid)
            worker = self.workers.get(uid)
            if meta.get("deletionTimestamp"):
                if worker is not None:
                    self._finish(uid)
                self._remove(pod)
                continue
            if worker is None and (pod.get("status") or {}).get("phase") not in (
                "Succeeded",
                "Failed",
            ):
                self._begin(pod)
            elif worker is not None:
                worker.pod = pod
        for uid in [u for u in self.workers if u not in seen]:
            self._finish(uid)

    def _bind(self, pod: JsonObj) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            self.api.call(
                "POST", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding", body
            )
        except ApiError as err:
            log.debug("binding %s/%s: %s", meta["namespace"], meta["name"], err)

    def _begin(self, pod: JsonObj) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        worker = PodWorker(
            kubelet=self,
            pod=pod,
            netns=f"{self.fabric.prefix}-{self.index}-{uid[:8]}",
            address=self.fabric.segments[self.index].allocate(),
            directory=self.workdir / "pods" / f"{meta['namespace']}_{meta['name']}_{uid[:8]}",
        )
        worker.thread = threading.Thread(target=worker.run, name=f"pod-{meta['name']}", daemon=True)
        self.workers[uid] = worker
        log.info("pod %s/%s: starting at %s", meta["namespace"], meta["name"], worker.address)
        worker.thread.start()

    def _finish(self, uid: str) -> None:
        worker = self.workers.pop(uid)
        worker.stop.set()
        if worker.thread is not None:
            worker.thread.join(timeout=30)
        log.info("pod %s: stopped", worker.key)

    def _remove(self, pod: JsonObj) -> None:
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        with contextlib.suppress(ApiError):
            self.api.call(
                "DELETE",
                path,
                {
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": meta["uid"]},
                },
            )

    def worker_for(self, namespace: str, name: str) -> PodWorker | None:
        for worker in list(self.workers.values()):
            meta = worker.pod["metadata"]
            if (meta["namespace"], meta["name"]) == (namespace, name):
                return worker
        return None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for uid in list(self.workers):
            self._finish(uid)


def pod_exec(
    kubelet: Kubelet, namespace: str, pod: str, argv: list[str], *, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in a running pod's network namespace (what `kubectl exec` gives here)."""
    worker = kubelet.worker_for(namespace, pod)
    if worker is None:
        raise LookupError(f"pod {namespace}/{pod} does not run on {kubelet.node_name}")
    return subprocess.run(
        ["ip", "netns", "exec", worker.netns, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
