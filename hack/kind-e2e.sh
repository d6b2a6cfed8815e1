#!/usr/bin/env bash
# End-to-end check of PeerTap on throwaway kind clusters, with the manifests of
# deploy/examples/cross-cluster/ (the same ones `make e2e-local` applies):
#   1. create the clusters (east; west too with CLUSTERS=2)
#   2. build both images and load them into every cluster
#   3. helm install the chart into every cluster
#   4. east: apply cluster-a/ (MVLAN with a NodePort relay, private CryptoVLAN, 2 pods)
#   5. west: copy the VLAN authority from east, apply cluster-b/ with east's relay address
#   6. wait for the member pods and their VLAN status
#   7. ping on pt-lab: east-1 -> east-2 (IPv4), east <-> west (IPv6 link-local), retried
#      while routes converge
#   8. delete east-2 and see it leave the VLAN; then tear the clusters down (also on failure)
#
# Needs docker, kind, kubectl and helm on PATH. Not run in CI (no Docker engine there).
#
# Environment:
#   CLUSTERS=2            1: east alone (the in-cluster case); 2: east and west
#   PREFIX=peertap        kind clusters are PREFIX-east and PREFIX-west
#   TIMEOUT=300           seconds to wait for each step
#   KEEP_CLUSTER=1        keep the clusters afterwards (for debugging)
#   SKIP_BUILD=1          reuse peertap-operator:e2e and peertap-sidecar:e2e images
set -euo pipefail

CLUSTERS="${CLUSTERS:-2}"
PREFIX="${PREFIX:-peertap}"
TIMEOUT="${TIMEOUT:-300}"
NAMESPACE="default"
RELEASE="peertap"
RELEASE_NAMESPACE="peertap-system"
TAG="e2e"
OPERATOR_IMAGE="peertap-operator:${TAG}"
SIDECAR_IMAGE="peertap-sidecar:${TAG}"
SIDECAR_CONTAINER="peertap"
VLAN="lab"
IFACE="pt-lab"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXAMPLES="${REPO}/deploy/examples/cross-cluster"
NAMES=(east west)
NAMES=("${NAMES[@]:0:${CLUSTERS}}")

step() { printf '\n==> %s\n' "$*"; }
die() {
  printf 'kind-e2e: %s\n' "$*" >&2
  exit 1
}

# wait_for DESCRIPTION COMMAND...: retry COMMAND every 2 s until it succeeds or TIMEOUT.
wait_for() {
  local what="$1" deadline=$((SECONDS + TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${TIMEOUT}s waiting for ${what}"
    sleep 2
  done
}

# k CLUSTER ARGS...: kubectl against one of the clusters.
k() {
  local cluster="$1"
  shift
  kubectl --context "kind-${PREFIX}-${cluster}" -n "${NAMESPACE}" "$@"
}

on_exit() {
  local status=$?
  if ((status != 0)); then
    step "failed (exit ${status}): diagnostics"
    for c in "${NAMES[@]}"; do
      k "${c}" -n "${RELEASE_NAMESPACE}" logs "deployment/${RELEASE}" --tail=100 || true
      k "${c}" get pods,cryptovlans,mvlans -o wide || true
      k "${c}" get events --sort-by=.lastTimestamp | tail -20 || true
    done
  fi
  if [[ "${KEEP_CLUSTER:-0}" == 1 ]]; then
    step "keeping clusters ${NAMES[*]/#/${PREFIX}-}"
  else
    step "tear down"
    for c in "${NAMES[@]}"; do kind delete cluster --name "${PREFIX}-${c}" || true; done
  fi
  exit "${status}"
}

for tool in docker kind kubectl helm; do
  command -v "${tool}" >/dev/null || die "${tool} is required on PATH"
done
[[ "${CLUSTERS}" == 1 || "${CLUSTERS}" == 2 ]] || die "CLUSTERS must be 1 or 2"
[[ -d "${EXAMPLES}/cluster-a" && -d "${EXAMPLES}/cluster-b" ]] || die "missing ${EXAMPLES}"

trap on_exit EXIT
step "1/8 create kind clusters: ${NAMES[*]}"
for c in "${NAMES[@]}"; do
  kind create cluster --name "${PREFIX}-${c}" --wait "${TIMEOUT}s"
done

step "2/8 build images and load them"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  docker build -f "${REPO}/deploy/docker/operator.Dockerfile" -t "${OPERATOR_IMAGE}" "${REPO}"
  docker build -f "${REPO}/deploy/docker/sidecar.Dockerfile" -t "${SIDECAR_IMAGE}" "${REPO}"
fi
for c in "${NAMES[@]}"; do
  kind load docker-image --name "${PREFIX}-${c}" "${OPERATOR_IMAGE}" "${SIDECAR_IMAGE}"
done

step "3/8 helm install ${RELEASE} into ${RELEASE_NAMESPACE}"
ca_bundle_published() {
  [[ -n "$(k "$1" get mutatingwebhookconfiguration "${RELEASE}" \
    -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]] &&
    [[ -n "$(k "$1" get validatingwebhookconfiguration "${RELEASE}" \
      -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]]
}
for c in "${NAMES[@]}"; do
  helm install "${RELEASE}" "${REPO}/helm/peertap" \
    --kube-context "kind-${PREFIX}-${c}" \
    --namespace "${RELEASE_NAMESPACE}" --create-namespace \
    --set operator.image.repository=peertap-operator \
    --set operator.image.tag="${TAG}" \
    --set operator.image.pullPolicy=Never \
    --set sidecar.image.repository=peertap-sidecar \
    --set sidecar.image.tag="${TAG}" \
    --set operator.verbose=true \
    --wait --timeout "${TIMEOUT}s"
  # Until the operator has patched its CA into the webhook configurations, pods are
  # not injected and CryptoVLANs cannot be created (validation fails closed).
  wait_for "the ${c} operator to publish its webhook CA" ca_bundle_published "${c}"
done

# The MVLAN and the CryptoVLAN first; the member pods once the MVLAN lists its relay
# addresses (a sidecar reads its bootstrap peers when it starts).
relay_address() { k "$1" get mvlan campus -o jsonpath='{.status.relayAddresses[0]}'; }
has_relay_address() { [[ -n "$(relay_address "$1")" ]]; }

step "4/8 east: apply ${EXAMPLES}/cluster-a"
k east apply -f "${EXAMPLES}/cluster-a/campus-mvlan.yaml" -f "${EXAMPLES}/cluster-a/lab-cryptovlan.yaml"
wait_for "east's relay address" has_relay_address east
k east apply -f "${EXAMPLES}/cluster-a/members.yaml"
relay="$(relay_address east)"
echo "east relay: ${relay}"

members=(east:east-1 east:east-2)
if ((CLUSTERS == 2)); then
  step "5/8 west: copy the VLAN authority, apply ${EXAMPLES}/cluster-b"
  wait_for "east's ${VLAN}-authority Secret" k east get secret "${VLAN}-authority"
  k east get secret "${VLAN}-authority" -o jsonpath='{.data.authority\.key}' | base64 -d |
    k west create secret generic "${VLAN}-authority" --from-file=authority.key=/dev/stdin
  k west label secret "${VLAN}-authority" app.kubernetes.io/managed-by=peertap-operator \
    peertap.io/component=vlan-authority "peertap.io/cryptovlan=${VLAN}"
  sed "s#CLUSTER_A_RELAY#${relay}#" "${EXAMPLES}/cluster-b/campus-mvlan.yaml" | k west apply -f -
  k west apply -f "${EXAMPLES}/cluster-b/lab-cryptovlan.yaml"
  wait_for "west's relay address" has_relay_address west
  k west apply -f "${EXAMPLES}/cluster-b/members.yaml"
  members+=(west:west-1)
else
  step "5/8 (one cluster: nothing to copy)"
fi

step "6/8 wait for the member pods and their VLAN status"
member_address() {
  k "$1" get cryptovlan "${VLAN}" -o jsonpath="{.status.members[?(@.pod==\"$2\")].address}"
}
has_address() { [[ -n "$(member_address "$1" "$2")" ]]; }
for m in "${members[@]}"; do
  c="${m%%:*}" pod="${m#*:}"
  k "${c}" wait --for=condition=Ready "pod/${pod}" --timeout "${TIMEOUT}s"
  wait_for "an address for ${c}/${pod}" has_address "${c}" "${pod}"
done
for c in "${NAMES[@]}"; do k "${c}" get cryptovlan "${VLAN}"; done

step "7/8 ping on ${IFACE}"
in_pod() {
  local c="$1" pod="$2"
  shift 2
  k "${c}" exec "${pod}" -c "${SIDECAR_CONTAINER}" -- "$@"
}
link_local() {
  in_pod "$1" "$2" ip -6 -o addr show dev "${IFACE}" scope link |
    sed -n 's#.*inet6 \(fe80::[0-9a-f:]*\)/64.*#\1#p' | head -1
}
ping_ok() { in_pod "$1" "$2" ping -c 3 -W 2 "${@:3}"; }
east2="$(member_address east east-2)"
wait_for "east-1 -> east-2 (${east2%/*})" ping_ok east east-1 -I "${IFACE}" "${east2%/*}"
in_pod east east-1 ping -c 3 -W 2 -I "${IFACE}" "${east2%/*}"
if ((CLUSTERS == 2)); then
  west1="$(link_local west west-1)"
  east1="$(link_local east east-1)"
  wait_for "east-1 -> west-1 (${west1})" ping_ok east east-1 -6 "${west1}%${IFACE}"
  in_pod east east-1 ping -c 3 -W 2 -6 "${west1}%${IFACE}"
  wait_for "west-1 -> east-1 (${east1})" ping_ok west west-1 -6 "${east1}%${IFACE}"
  in_pod west west-1 ping -c 3 -W 2 -6 "${east1}%${IFACE}"
fi

step "8/8 delete east-2: it leaves the VLAN"
k east delete pod east-2 --wait=true --timeout "${TIMEOUT}s"
gone() { [[ -z "$(member_address east east-2)" ]]; }
wait_for "east-2 to leave ${VLAN}'s members" gone
k east get cryptovlan "${VLAN}"
if ((CLUSTERS == 2)); then
  wait_for "west-1 -> east-1 after the change" ping_ok west west-1 -6 "${east1}%${IFACE}"
  step "PASS: private VLAN ${VLAN} across ${CLUSTERS} kind clusters: east-1 <-> west-1 through both relays, east-1 -> east-2 in east; east-2 left"
else
  step "PASS: private VLAN ${VLAN} in one kind cluster: east-1 -> east-2 (${east2}); east-2 left"
fi
