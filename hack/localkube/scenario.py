"""The end-to-end scenario of `make e2e-local`, step by step, for one or two clusters.

    1 start the control planes ("east", and "west" with two clusters) and their networks
    2 helm install the chart into each (the operator runs from the chart's Deployment)
    3 east: apply deploy/examples/cross-cluster/cluster-a (MVLAN, CryptoVLAN, member pods)
    4 west: copy lab-authority from east, apply cluster-b with east's relay address
    5 wait until every member pod is Ready and in its CryptoVLAN's status
    6 ping on pt-lab: within east (IPv4), and east <-> west (IPv6 link-local)
    7 delete one member pod: it leaves the MLS group, the others go on talking
    8 one summary line

`run()` returns what happened; the test asserts on it and the script prints it.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .cluster import REPO, LocalCluster, ServiceProxy
from .fabric import Fabric
from .kubelet import pod_exec

EXAMPLES = REPO / "deploy" / "examples" / "cross-cluster"
NAMESPACE = "default"
VLAN = "lab"
IFACE = "pt-lab"
PLACEHOLDER = "CLUSTER_A_RELAY"
T = TypeVar("T")
Say = Callable[[str], None]


class ScenarioError(Exception):
    """A step did not reach its goal in time."""


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float = 180.0, every: float = 1.0
) -> T:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as err:
            last_error = f" (last error: {err})"
        time.sleep(every)
    raise ScenarioError(f"timed out after {timeout:.0f} s waiting for {what}{last_error}")


@dataclass
class Ping:
    source: str
    target: str
    address: str
    received: int
    sent: int
    output: str


@dataclass
class Outcome:
    clusters: int
    vlan_id: str = ""
    pings: list[Ping] = field(default_factory=list)
    relays: list[str] = field(default_factory=list)
    group_before: int = 0
    group_after: int = 0
    left: str = ""
    relay_bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            bool(self.pings)
            and all(p.received > 0 for p in self.pings)
            and (self.group_after == self.group_before - 1)
        )

    def summary(self) -> str:
        answered = sum(p.received for p in self.pings)
        sent = sum(p.sent for p in self.pings)
        cross = [p for p in self.pings if p.source.split("/")[0] != p.target.split("/")[0]]
        where = (
            f"{len(cross)} of {len(self.pings)} ping runs between the clusters"
            if cross
            else f"{len(self.pings)} ping run(s) in one cluster"
        )
        verdict = "PASS" if self.ok else "FAIL"
        plural = "s" if self.clusters > 1 else ""
        return (
            f"{verdict}: private VLAN {VLAN} ({self.vlan_id[:12]}...) on {self.clusters} "
            f"cluster{plural}: {answered}/{sent} echo replies on {IFACE}, {where}; relays "
            f"{', '.join(self.relays)} carried {self.relay_bytes} bytes they cannot read; "
            f"{self.left} left the MLS group ({self.group_before} -> {self.group_after} "
            f"members); {self.seconds:.0f} s"
        )


def _members(cluster: LocalCluster) -> list[dict[str, Any]]:
    obj = json.loads(cluster.kubectl("get", "cryptovlan", VLAN, "-n", NAMESPACE, "-o", "json"))
    return list((obj.get("status") or {}).get("members") or [])


def _all_listed(cluster: LocalCluster, pods: list[str]) -> bool:
    """Every pod is in the CryptoVLAN's status with an address."""
    members = _members(cluster)
    return {m["pod"] for m in members} >= set(pods) and all(_ipv4(members, p) for p in pods)


def _pod_ready(cluster: LocalCluster, pod: str) -> bool:
    obj = json.loads(
        cluster.kubectl("get", "pod", pod, "-n", NAMESPACE, "-o", "json", check=False) or "{}"
    )
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _sidecar_status(cluster: LocalCluster, pod: str) -> dict[str, Any]:
    worker = cluster.kubelet.worker_for(NAMESPACE, pod)
    if worker is None:
        raise ScenarioError(f"pod {pod} does not run")
    with urllib.request.urlopen(f"http://{worker.address}:9464/status", timeout=3) as answer:
        return dict(json.loads(answer.read()))


def _group_size(cluster: LocalCluster, pod: str) -> int:
    for vlan in _sidecar_status(cluster, pod).get("vlans") or []:
        if vlan.get("interface") == IFACE or vlan.get("label") == VLAN:
            return int(vlan.get("members") or 0)
    return 0


def _link_local(cluster: LocalCluster, pod: str) -> str | None:
    out = pod_exec(
        cluster.kubelet,
        NAMESPACE,
        pod,
        ["ip", "-6", "-o", "addr", "show", "dev", IFACE, "scope", "link"],
    )
    found = re.search(r"inet6 (fe80::[0-9a-f:]+)/64", out.stdout)
    if found is None or "tentative" in out.stdout:
        return None
    return found.group(1)


def _ipv4(members: list[dict[str, Any]], pod: str) -> str | None:
    for m in members:
        if m.get("pod") == pod and m.get("address"):
            return str(m["address"]).split("/")[0]
    return None


def _ping(cluster: LocalCluster, pod: str, address: str, *, count: int = 3) -> tuple[int, str]:
    argv = ["ping", "-c", str(count), "-W", "2", "-i", "0.5"]
    argv += ["-I", IFACE, address] if "." in address else ["-6", f"{address}%{IFACE}"]
    out = pod_exec(cluster.kubelet, NAMESPACE, pod, argv, timeout=30)
    got = re.search(r"(\d+) received", out.stdout)
    return (int(got.group(1)) if got else 0), out.stdout.strip()


def _relay_bytes(cluster: LocalCluster) -> int:
    total = 0
    pods = json.loads(
        cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", "peertap.io/role=relay", "-o", "json")
    )["items"]
    for pod in pods:
        status = _sidecar_status(cluster, pod["metadata"]["name"])
        for counters in (status.get("trunk_peers") or {}).values():
            total += int(counters.get("bytes_sent") or 0)
    return total


def run(
    *,
    clusters: int,
    workdir: Path,
    prefix: str,
    say: Say = print,
    keep: Callable[[], None] | None = None,
) -> Outcome:
    began = time.monotonic()
    outcome = Outcome(clusters=clusters)

    def tell(text: str) -> None:
        # Step lines carry the seconds since the start: where the time goes.
        if text.startswith("==>"):
            text = f"==> [{time.monotonic() - began:5.1f} s]" + text[3:]
        say(text)

    fabric = Fabric(prefix)
    started: list[LocalCluster] = []
    proxy: ServiceProxy | None = None
    try:
        tell(f"==> 1/8 {clusters} control plane(s) and their pod networks ({prefix}-net)")
        fabric.up()
        names = ["east", "west"][:clusters]
        for index, name in enumerate(names, start=1):
            cluster = LocalCluster.start(fabric, index=index, name=name, workdir=workdir)
            started.append(cluster)
            tell(
                f"    {name}: {cluster.control_plane.version} at {cluster.control_plane.server}, "
                f"pods on {fabric.segments[index].cidr}, node {cluster.kubelet.node_address}"
            )
        proxy = ServiceProxy(fabric, started)
        proxy.start()

        tell("==> 2/8 helm install peertap (operator from the chart's Deployment)")
        for cluster in started:
            cluster.install_chart()
            tell(
                f"    {cluster.name}: "
                + cluster.kubectl("get", "deploy", "-n", "peertap-system", "--no-headers").strip()
            )

        for cluster in started:
            # The webhooks answer once the operator published its CA and the Service rules
            # lead to its pod: a server-side dry run goes through them.
            wait_for(
                f"{cluster.name}'s webhooks to answer",
                functools.partial(
                    cluster.kubectl,
                    "apply",
                    "--dry-run=server",
                    "-n",
                    NAMESPACE,
                    "-f",
                    str(EXAMPLES / "cluster-a" / "campus-mvlan.yaml"),
                ),
                timeout=60,
            )

        east = started[0]
        tell("==> 3/8 east: kubectl apply -f deploy/examples/cross-cluster/cluster-a/")
        relay = _apply_example(east, EXAMPLES / "cluster-a", tell=tell)
        tell(f"    east relay: {relay[0]}")
        outcome.relays.append("east/campus-relay")

        pods = {"east": ["east-1", "east-2"]}
        if clusters > 1:
            west = started[1]
            tell(
                "==> 4/8 west: copy the VLAN authority; apply cluster-b/, "
                "bootstrapping from east's relay"
            )
            secret = wait_for(
                "east's lab-authority Secret",
                lambda: json.loads(
                    east.kubectl(
                        "get", "secret", "lab-authority", "-n", NAMESPACE, "-o", "json", check=False
                    )
                    or "{}"
                ),
            )
            key = base64.b64decode(secret["data"]["authority.key"])
            keyfile = workdir / "lab-authority.pem"
            keyfile.write_bytes(key)
            keyfile.chmod(0o600)
            west.kubectl(
                "create",
                "secret",
                "generic",
                "lab-authority",
                "-n",
                NAMESPACE,
                f"--from-file=authority.key={keyfile}",
            )
            west.kubectl(
                "label",
                "secret",
                "lab-authority",
                "-n",
                NAMESPACE,
                "app.kubernetes.io/managed-by=peertap-operator",
                "peertap.io/component=vlan-authority",
                f"peertap.io/cryptovlan={VLAN}",
            )
            keyfile.unlink()
            _apply_example(west, EXAMPLES / "cluster-b", tell=tell, relay=relay[0])
            outcome.relays.append("west/campus-relay")
            pods["west"] = ["west-1"]
        else:
            tell("==> 4/8 (one cluster: nothing to copy)")

        by_name = {c.name: c for c in started}
        tell("==> 5/8 wait for the member pods and their VLAN status")
        for cname, names_ in pods.items():
            cluster = by_name[cname]
            for pod in names_:
                _check_sidecar(cluster, pod)
                wait_for(
                    f"{cname}/{pod} Ready", functools.partial(_pod_ready, cluster, pod), timeout=240
                )
            wait_for(
                f"{cname}'s CryptoVLAN listing {', '.join(names_)}",
                functools.partial(_all_listed, cluster, names_),
            )
            tell(_indent(cluster.kubectl("get", "cryptovlan", VLAN, "-n", NAMESPACE)))
        vlan_ids = {
            json.loads(c.kubectl("get", "cryptovlan", VLAN, "-n", NAMESPACE, "-o", "json"))[
                "status"
            ]["vlanId"]
            for c in started
        }
        if len(vlan_ids) != 1:
            raise ScenarioError(f"the clusters disagree on the VLAN-ID: {sorted(vlan_ids)}")
        outcome.vlan_id = vlan_ids.pop()
        total = sum(len(v) for v in pods.values())
        wait_for(
            f"an MLS group of all {total} members",
            lambda: _group_size(east, "east-1") == total,
            timeout=180,
        )
        outcome.group_before = total

        tell("==> 6/8 ping on pt-lab")
        targets: list[
            tuple[str, str, str, str]
        ] = []  # (from cluster, from pod, to cluster, to pod)
        targets.append(("east", "east-1", "east", "east-2"))
        if clusters > 1:
            targets += [("east", "east-1", "west", "west-1"), ("west", "west-1", "east", "east-2")]
        for src_c, src, dst_c, dst in targets:
            if src_c == dst_c:
                address = _ipv4(_members(by_name[dst_c]), dst) or ""
            else:
                address = wait_for(
                    f"{dst}'s link-local address",
                    functools.partial(_link_local, by_name[dst_c], dst),
                    timeout=60,
                )

            def attempt(
                c: LocalCluster = by_name[src_c], p: str = src, a: str = address
            ) -> tuple[int, str] | None:
                got, text = _ping(c, p, a)
                return (got, text) if got else None

            got, text = wait_for(f"{src} -> {dst} ({address})", attempt, timeout=120, every=2)
            outcome.pings.append(Ping(f"{src_c}/{src}", f"{dst_c}/{dst}", address, got, 3, text))
            tell(f"    {src_c}/{src} -> {dst_c}/{dst} {address}: {got}/3 replies")

        tell("==> 7/8 delete east-2: it leaves the group")
        east.kubectl("delete", "pod", "east-2", "-n", NAMESPACE, "--wait=true", "--timeout=120s")
        outcome.left = "east/east-2"
        wait_for(
            "east-2 gone from the CryptoVLAN's members",
            lambda: "east-2" not in {m["pod"] for m in _members(east)},
        )
        outcome.group_after = wait_for(
            "an MLS group without east-2",
            lambda: n if (n := _group_size(east, "east-1")) == total - 1 else None,
            timeout=180,
        )
        tell(_indent(east.kubectl("get", "cryptovlan", VLAN, "-n", NAMESPACE)))
        if clusters > 1:
            got, _ = wait_for(
                "west-1 -> east-1 after the change",
                lambda: (
                    r
                    if (
                        r := _ping(
                            by_name["west"], "west-1", _link_local(east, "east-1") or "fe80::1"
                        )
                    )[0]
                    else None
                ),
                timeout=120,
                every=2,
            )
            outcome.pings.append(Ping("west/west-1", "east/east-1", "link-local", got, 3, ""))
            tell(f"    west/west-1 -> east/east-1 after the change: {got}/3 replies")
        outcome.relay_bytes = sum(_relay_bytes(c) for c in started)
        outcome.seconds = time.monotonic() - began
        tell("==> 8/8 " + outcome.summary())
        if keep is not None:
            keep()
        return outcome
    finally:
        if proxy is not None:
            proxy.stop()
        for cluster in reversed(started):
            cluster.stop()
        fabric.down()


def _check_sidecar(cluster: LocalCluster, pod: str) -> None:
    """The webhook added the sidecar; a pod created while it did not answer has none
    (failurePolicy Ignore) and would never join, whatever its status says."""
    obj = json.loads(cluster.kubectl("get", "pod", pod, "-n", NAMESPACE, "-o", "json"))
    spec = obj.get("spec") or {}
    names = [c["name"] for c in [*(spec.get("initContainers") or []), *spec["containers"]]]
    if "peertap" not in names:
        raise ScenarioError(
            f"{cluster.name}/{pod} has no peertap sidecar (containers: {', '.join(names)}): "
            "the webhook did not answer when it was created"
        )


def _relay_addresses(cluster: LocalCluster) -> list[str]:
    obj = json.loads(cluster.kubectl("get", "mvlan", "campus", "-n", NAMESPACE, "-o", "json"))
    return list((obj.get("status") or {}).get("relayAddresses") or [])


def _apply_example(
    cluster: LocalCluster, directory: Path, *, tell: Say, relay: str | None = None
) -> list[str]:
    """Apply one cluster's example files: the MVLAN and the CryptoVLAN first, the member
    pods once the MVLAN lists its relay addresses (a sidecar reads its bootstrap peers
    from node.json when it starts). Returns the relay addresses."""
    texts = {p.name: p.read_text() for p in sorted(directory.glob("*.yaml"))}
    if relay is not None:
        texts = {name: text.replace(PLACEHOLDER, relay) for name, text in texts.items()}
    first = [name for name in texts if name != "members.yaml"]
    for names in (first, ["members.yaml"]):
        manifests = "\n---\n".join(texts[name] for name in names)
        tell(_indent(cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=manifests)))
        if names is first:
            addresses = wait_for(
                f"{cluster.name}'s relay addresses", lambda: _relay_addresses(cluster)
            )
            # The relay restarts once it holds a credential of the VLAN: let that settle
            # first, so members meet the relay that stays.
            wait_for(
                f"{cluster.name}'s relay to admit the VLAN's nodes",
                lambda: (
                    '"credential"'
                    in cluster.kubectl(
                        "get",
                        "configmap",
                        "campus-relay",
                        "-n",
                        NAMESPACE,
                        "-o",
                        "jsonpath={.data.node\\.json}",
                        check=False,
                    )
                ),
            )
            cluster.kubectl(
                "rollout", "status", "deployment/campus-relay", "-n", NAMESPACE, "--timeout=120s"
            )
    return addresses


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines())
