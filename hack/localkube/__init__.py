"""localkube: run the Pods that local Kubernetes control planes hold, as a kubelet would.

`make e2e-local` and `tests/e2e/` use it to run PeerTap's Kubernetes deployment for
real without containers: every Pod becomes a network namespace on its cluster's pod
network, its volumes become files, its containers become processes from this
machine's virtualenv.

- `fabric`: the network: one namespace holding each cluster's pod bridge and node
  address, the link to the host where the API servers listen, and the Service rules.
- `services`: Services and EndpointSlices -> nftables rules (a kube-proxy stand-in).
- `volumes`: the files a Pod's volumes hold, written under the pod's directory.
- `runtime`: containers -> processes (image -> entry point, env, paths).
- `kubelet`: the loop that registers a Node, binds, realizes and reports Pods.
- `cluster`: one control plane + its pod network + kubelet + the chart, as a unit.
"""
