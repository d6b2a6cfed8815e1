"""The lab: pods (network namespaces) on a veth underlay, with peertap nodes in them.

    with Lab.up(topology("relay"), state_dir=tmp) as lab:
        lab.wait_ready(timeout=30)
        lab.exec("a", ["ping", "-c1", lab.overlay_address("b")], check=True)

`down()` (also on leaving the `with` block, and after a failed `up`) stops every
process in the pods, deletes the namespaces and veths and removes the files.
`Lab.teardown(state_dir)` does the same from the journal alone, e.g. after the
process that ran `up` crashed.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from . import netns, nodes, procs
from .errors import (
    LabError,
    LabSpecError,
    LabStateError,
    NodeApiUnreachable,
    NodeError,
    NodeExited,
    NodeNotReady,
)
from .http import HttpResponse, http_get, http_request
from .journal import Journal, proc_start_time
from .plan import API_LISTEN, Plan, PodPlan, make_plan, overlay_ip
from .spec import LabSpec

GRACE_S = 5.0
NODE = "node"


def random_prefix() -> str:
    return f"pt-{secrets.token_hex(2)}-"


class Lab:
    def __init__(self, *, plan: Plan, journal: Journal) -> None:
        self.plan = plan
        self.state_dir = journal.state_dir
        self._journal = journal
        self._children: list[subprocess.Popen[Any]] = []
        self._node_pids: dict[str, tuple[int, int | None]] = {}
        self._node_procs: dict[str, subprocess.Popen[Any]] = {}

    # -- building and tearing down -------------------------------------------------------

    @classmethod
    def up(
        cls,
        spec: LabSpec,
        *,
        state_dir: str | Path | None = None,
        prefix: str | None = None,
        start_nodes: bool = True,
    ) -> Lab:
        # Specs made with model_copy(update=...) skip validation; `down` relies on it.
        try:
            spec = LabSpec.model_validate(spec.model_dump())
        except ValidationError as err:
            raise LabSpecError(f"invalid lab spec:\n{err}") from err
        plan = make_plan(spec, prefix or random_prefix())
        taken = netns.list_netns() & {p.netns for p in plan.pods.values()}
        if taken:
            raise LabStateError(f"prefix {plan.prefix!r} is in use: {', '.join(sorted(taken))}")
        if state_dir is None:
            state = Path(tempfile.mkdtemp(prefix=f"{plan.prefix}state-"))
        else:
            state = Path(state_dir).resolve()
        journal = Journal.create(state, prefix=plan.prefix, spec=spec)
        lab = cls(plan=plan, journal=journal)
        if state_dir is None:
            journal.owned(state)
        try:
            lab._build()
            if start_nodes:
                for pod in plan.node_pods():
                    lab.start_node(pod)
        except BaseException:
            lab.down()
            raise
        return lab

    @classmethod
    def attach(cls, state_dir: str | Path) -> Lab:
        """The lab recorded in `state_dir`, e.g. one a `peertap lab up` left running."""
        journal = Journal(Path(state_dir).resolve())
        rec = journal.read()
        lab = cls(plan=make_plan(rec.spec, rec.prefix), journal=journal)
        for entry in rec.procs:
            if entry.what == NODE:
                lab._node_pids[entry.pod] = (entry.pid, entry.start_time)
        return lab

    def _build(self) -> None:
        plan, journal = self.plan, self._journal
        for pod in plan.pods.values():
            journal.netns(pod.netns)
            netns.create_netns(pod.netns)
        for link in plan.links:
            journal.link(link.root_a)
            journal.link(link.root_b)
            netns.create_veth(link.root_a, link.root_b)
            for end, root in ((link.a, link.root_a), (link.b, link.root_b)):
                netns.move_link(root, into=plan.pods[end].netns, rename=link.ifname(end))
        for pod in plan.pods.values():
            netns.configure(
                pod.netns,
                addresses=[
                    (x.ifname(pod.name), x.address(pod.name)) for x in plan.links_of(pod.name)
                ],
                routes=pod.routes,
            )
            netns.set_ip_forward(pod.netns, pod.ip_forward, ipv6=plan.ipv6)
        if plan.node_pods():
            journal.owned(self.state_dir / "pods")
            journal.owned(self.state_dir / nodes.CREATOR_KEY)
            nodes.write_node_files(plan, self.state_dir)

    def down(self, *, grace_s: float = GRACE_S) -> None:
        """Stop all processes, delete namespaces and veths, remove files. Safe to repeat."""
        procs.stop_all(((c.pid, None) for c in self._children if c.poll() is None), grace_s=grace_s)
        for child in self._children:
            child.wait()
        self._children.clear()
        self._node_pids.clear()
        self._node_procs.clear()
        self.teardown(self.state_dir, grace_s=grace_s)

    @staticmethod
    def teardown(state_dir: str | Path, *, grace_s: float = GRACE_S) -> None:
        """Remove everything the lab journaled in `state_dir`; nothing to do if it holds none."""
        journal = Journal(Path(state_dir))
        if not journal.path.exists():
            return
        rec = journal.read()
        plan = make_plan(rec.spec, rec.prefix)
        names = set(rec.netns) | {p.netns for p in plan.pods.values()}
        found: list[tuple[int, int | None]] = [(e.pid, e.start_time) for e in rec.procs]
        found += [(pid, proc_start_time(pid)) for name in names for pid in netns.pids_in(name)]
        procs.stop_all(found, grace_s=grace_s)
        errors: list[LabError] = []
        for name in sorted(names):
            try:
                netns.remove_netns(name)
            except LabError as err:
                errors.append(err)
        for link in set(rec.links) | {n for x in plan.links for n in (x.root_a, x.root_b)}:
            try:
                netns.delete_root_link(link)
            except LabError as err:
                errors.append(err)
        if errors:
            # Keep the journal so that another `down` can retry.
            raise LabError(f"teardown of {state_dir} incomplete: {errors}") from errors[0]
        for path in map(Path, reversed(rec.paths)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        journal.path.unlink(missing_ok=True)
        if journal.state_dir.is_dir() and not any(journal.state_dir.iterdir()):
            journal.state_dir.rmdir()

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    # -- pods ----------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return self.plan.prefix

    @property
    def pods(self) -> list[str]:
        return list(self.plan.pods)

    def netns(self, pod: str) -> str:
        return self._pod(pod).netns

    def exec(
        self, pod: str, argv: Sequence[str], **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run `argv` to completion inside the pod (subprocess.run keyword arguments)."""
        return subprocess.run(netns.ns_argv(self.netns(pod), argv), **kwargs)

    def spawn(self, pod: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start `argv` inside the pod (subprocess.Popen keyword arguments); `down` stops it."""
        child = subprocess.Popen(netns.ns_argv(self.netns(pod), argv), **kwargs)
        self._children.append(child)
        self._journal.proc(pid=child.pid, pod=pod, what=str(argv[0]))
        return child

    def underlay_address(self, pod: str, peer: str) -> str:
        """`pod`'s underlay address on its link to `peer`."""
        return str(self.plan.underlay_address(pod, peer))

    def overlay_address(self, pod: str) -> str:
        """The IP of a member's VLAN interface (pt-lab), without prefix length."""
        address = self._pod(pod).overlay_address
        if address is None:
            raise NodeError(f"pod {pod} is not a VLAN member")
        return overlay_ip(address)

    def _pod(self, pod: str) -> PodPlan:
        try:
            return self.plan.pods[pod]
        except KeyError as err:
            raise LabError(f"no pod {pod!r} in this lab (pods: {', '.join(self.pods)})") from err

    # -- nodes ---------------------------------------------------------------------------

    def _files(self, pod: str) -> nodes.NodeFiles:
        if self._pod(pod).node is None:
            raise NodeError(f"pod {pod} runs no peertap node")
        return nodes.NodeFiles(nodes.pod_dir(self.state_dir, pod))

    def config_path(self, pod: str) -> Path:
        return self._files(pod).config

    def key_path(self, pod: str) -> Path:
        return self._files(pod).key

    def trace_path(self, pod: str) -> Path:
        return self._files(pod).trace_file(self.plan.spec.trace_format)

    def log_path(self, pod: str) -> Path:
        return self._files(pod).log

    def node_api(self, pod: str) -> str:
        """Base URL of the node's API; it answers only inside the pod (see http_get)."""
        self._files(pod)
        return f"http://{API_LISTEN}"

    def ui_url(self, pod: str) -> str:
        """Address of the node's web UI; like the API, it answers only inside the pod."""
        return f"{self.node_api(pod)}/ui/"

    def node_pid(self, pod: str) -> int | None:
        """Pid of the pod's running node, None if it is not running."""
        entry = self._node_pids.get(pod)
        if entry is None or not procs.alive(*entry):
            return None
        return entry[0]

    def start_node(self, pod: str) -> None:
        """Start (or restart after stop_node or a crash) the pod's node, same key and config."""
        files = self._files(pod)
        if self.node_pid(pod) is not None:
            raise NodeError(f"node {pod} is already running")
        child = nodes.launch(
            self.netns(pod),
            files,
            trace=self.plan.spec.trace,
            trace_format=self.plan.spec.trace_format,
        )
        self._children.append(child)
        self._journal.proc(pid=child.pid, pod=pod, what=NODE)
        self._node_pids[pod] = (child.pid, proc_start_time(child.pid))
        self._node_procs[pod] = child

    def stop_node(self, pod: str, *, grace_s: float = GRACE_S) -> None:
        """SIGTERM the pod's node, SIGKILL after `grace_s`; no-op if it is not running."""
        self._files(pod)
        entry = self._node_pids.pop(pod, None)
        if entry is None:
            return
        procs.stop_all([entry], grace_s=grace_s)
        child = self._node_procs.pop(pod, None)
        if child is not None:
            child.wait()
            self._children.remove(child)

    def http_get(self, pod: str, path: str, *, timeout: float = 5.0) -> HttpResponse:
        """GET `path` from the pod's node API, from inside the pod's namespace."""
        return http_get(self.netns(pod), self.node_api(pod) + path, timeout=timeout)

    def http_post(self, pod: str, path: str, *, timeout: float = 10.0) -> HttpResponse:
        """POST (empty body) `path` to the pod's node API, from inside the pod's namespace."""
        return http_request(
            self.netns(pod), self.node_api(pod) + path, method="POST", timeout=timeout
        )

    def status(self, pod: str) -> Any:
        """The node's /status document."""
        return self.http_get(pod, "/status").json()

    def wait_ready(self, timeout: float = 30.0, *, pods: Sequence[str] | None = None) -> None:
        """Wait until every node (or those in `pods`) answers /readyz with 200."""
        deadline = time.monotonic() + timeout
        waiting = list(pods if pods is not None else self._node_pids)
        last: dict[str, str] = {}
        while waiting:
            for pod in list(waiting):
                if self.node_pid(pod) is None:
                    child = self._node_procs.get(pod)
                    code = child.poll() if child is not None else None
                    if code is None:
                        raise NodeError(f"node {pod} is not running")
                    raise NodeExited(pod, code, nodes.log_tail(self._files(pod)))
                try:
                    response = self.http_get(pod, "/readyz", timeout=2.0)
                except NodeApiUnreachable as err:
                    last[pod] = str(err)
                    continue
                if response.status == 200:
                    waiting.remove(pod)
                else:
                    last[pod] = f"/readyz answered {response.status}"
            if waiting and time.monotonic() > deadline:
                detail = "; ".join(f"{p}: {last.get(p, '?')}" for p in waiting)
                raise NodeNotReady(f"not ready after {timeout:.0f} s: {detail}")
            if waiting:
                time.sleep(0.1)
