"""`make e2e-local` as a test: PeerTap on real local control planes, from manifests to ping.

Each test runs the whole scenario (hack/localkube/scenario.py): real etcd,
kube-apiserver and kube-controller-manager per cluster, the chart installed with
Helm, the operator running from the chart's Deployment under its ServiceAccount,
every Pod the API servers hold realized as a network namespace running its
(webhook-mutated) containers' processes, deploy/examples/cross-cluster/ applied.

The two-cluster run includes the in-cluster case (east-1 -> east-2 in one cluster);
`make e2e-local CLUSTERS=1` runs that case alone, which CI does not repeat.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from localkube import scenario

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.clusters]


@pytest.mark.timeout(600)
def test_two_clusters_ping_on_a_private_vlan_through_both_relays_and_a_deleted_pod_leaves(
    fabric_lock: None, prefix: str, e2e_workdir: Path
) -> None:
    outcome = scenario.run(clusters=2, workdir=e2e_workdir, prefix=prefix)
    print(outcome.summary())
    runs = [(p.source, p.target) for p in outcome.pings]
    assert runs == [
        ("east/east-1", "east/east-2"),
        ("east/east-1", "west/west-1"),
        ("west/west-1", "east/east-2"),
        ("west/west-1", "east/east-1"),
    ]
    assert all(p.received > 0 for p in outcome.pings), outcome.pings
    assert outcome.relays == ["east/campus-relay", "west/campus-relay"]
    assert (outcome.group_before, outcome.group_after) == (3, 2)
    assert len(outcome.vlan_id) == 32
    assert outcome.relay_bytes > 0
