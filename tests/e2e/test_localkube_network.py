"""The local clusters' network: Services reach their endpoints, clusters meet only at NodePorts.

Real namespaces, bridges and nftables rules (hack/localkube/fabric.py, services.py);
a TCP server in a pod of cluster 1, clients in pods of both clusters.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from localkube import services
from localkube.fabric import Fabric

pytestmark = pytest.mark.netns

SERVER = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 4001)); s.listen(); print('listening', flush=True)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.sendall(b'relay'); c.close()\n"
)
CLIENT = (
    "import socket,sys\n"
    "try:\n"
    "    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
    "    print(s.recv(16).decode())\n"
    "except OSError as e:\n"
    "    print('failed', e)\n"
)


@pytest.fixture
def fabric(fabric_lock: None, prefix: str) -> Iterator[Fabric]:
    fab = Fabric(prefix)
    try:
        fab.up()
        fab.add_segment(1, service_cidr="10.96.0.0/16")
        fab.add_segment(2, service_cidr="10.97.0.0/16")
        yield fab
    finally:
        fab.down()


def _service(kind: str) -> dict[str, object]:
    return {
        "metadata": {"namespace": "default", "name": "campus-relay"},
        "spec": {
            "type": kind,
            "clusterIP": "10.96.0.40",
            "ports": [{"name": "p2p", "port": 4001, "nodePort": 30401, "protocol": "TCP"}],
        },
    }


def _slice(address: str, *, ready: bool) -> dict[str, object]:
    return {
        "metadata": {
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "campus-relay"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "p2p", "port": 4001}],
        "endpoints": [{"addresses": [address], "conditions": {"ready": ready}}],
    }


def _connect(pod_ns: str, host: str, port: int) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", pod_ns, "python3", "-I", "-c", CLIENT, host, str(port)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return out.stdout.strip()


def test_another_cluster_reaches_a_pod_through_its_node_port_and_not_directly(
    fabric: Fabric, prefix: str
) -> None:
    relay_ip = fabric.segments[1].allocate()
    fabric.attach_pod(1, f"{prefix}-1-relay", relay_ip)
    local_ip = fabric.segments[1].allocate()
    fabric.attach_pod(1, f"{prefix}-1-local", local_ip)
    remote_ip = fabric.segments[2].allocate()
    fabric.attach_pod(2, f"{prefix}-2-remote", remote_ip)
    east = services.ClusterView(
        bridge="kc1",
        node_address=fabric.segments[1].gateway,
        services=[_service("NodePort")],
        endpoint_slices=[_slice(relay_ip, ready=True)],
        api_door="100.64.0.1:1",
    )
    west = services.ClusterView("kc2", fabric.segments[2].gateway, [], [], "100.64.0.1:2")
    fabric.apply_rules(services.ruleset([east, west]))
    server = subprocess.Popen(
        ["ip", "netns", "exec", f"{prefix}-1-relay", "python3", "-I", "-c", SERVER],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "listening"
        # Same cluster: by ClusterIP (DNAT and masquerade on one bridge) and by pod IP.
        assert _connect(f"{prefix}-1-local", "10.96.0.40", 4001) == "relay"
        assert _connect(f"{prefix}-1-local", relay_ip, 4001) == "relay"
        # The other cluster: through the node port, never to the pod IP itself.
        assert _connect(f"{prefix}-2-remote", fabric.segments[1].gateway, 30401) == "relay"
        assert _connect(f"{prefix}-2-remote", relay_ip, 4001).startswith("failed")
    finally:
        server.kill()
        server.wait()


def test_a_service_leads_only_to_ready_endpoints_and_kubernetes_to_the_api_door() -> None:
    kubernetes = {
        "metadata": {"namespace": "default", "name": "kubernetes"},
        "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]},
    }
    view = services.ClusterView(
        bridge="kc1",
        node_address="100.65.1.1",
        services=[_service("ClusterIP"), kubernetes],
        endpoint_slices=[_slice("100.65.1.7", ready=False)],
        api_door="100.64.0.1:5555",
    )
    rules = services.cluster_rules(view)
    assert [(r.match, r.target) for r in rules] == [
        ("ip daddr 10.96.0.1 tcp dport 443", "100.64.0.1:5555")
    ]
    ready = services.ClusterView(
        **{**view.__dict__, "endpoint_slices": [_slice("100.65.1.7", ready=True)]}
    )
    assert ("ip daddr 10.96.0.40 tcp dport 4001", "100.65.1.7:4001") in [
        (r.match, r.target) for r in services.cluster_rules(ready)
    ]
