#!/usr/bin/env bash
# End-to-end check of PeerTap on a throwaway kind cluster:
#   1. create the cluster          5. apply deploy/examples
#   2. build both images           6. wait for two member pods and their addresses
#   3. load them into the cluster  7. ping across the VLAN in both directions
#   4. helm install the chart      then tear the cluster down (also on failure).
#
# Needs docker, kind, kubectl and helm on PATH. Not run in CI (no Docker engine there).
#
# Environment:
#   CLUSTER=peertap-e2e   kind cluster name
#   NAMESPACE=default     namespace the examples are applied to
#   TIMEOUT=300           seconds to wait for each step
#   KEEP_CLUSTER=1        keep the cluster afterwards (for debugging)
#   SKIP_BUILD=1          reuse peertap-operator:e2e and peertap-sidecar:e2e images
set -euo pipefail

CLUSTER="${CLUSTER:-peertap-e2e}"
NAMESPACE="${NAMESPACE:-default}"
TIMEOUT="${TIMEOUT:-300}"
RELEASE="peertap"
RELEASE_NAMESPACE="peertap-system"
TAG="e2e"
OPERATOR_IMAGE="peertap-operator:${TAG}"
SIDECAR_IMAGE="peertap-sidecar:${TAG}"
SIDECAR_CONTAINER="peertap"
PEER_POD="peertap-e2e-peer"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXAMPLES="${REPO}/deploy/examples"

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

k() { kubectl --context "kind-${CLUSTER}" "$@"; }

on_exit() {
  local status=$?
  if ((status != 0)); then
    step "failed (exit ${status}): diagnostics"
    k -n "${RELEASE_NAMESPACE}" logs "deployment/${RELEASE}" --tail=200 || true
    k -n "${NAMESPACE}" get pods,cryptovlans,mvlans -o wide || true
    k -n "${NAMESPACE}" get events --sort-by=.lastTimestamp | tail -40 || true
  fi
  if [[ "${KEEP_CLUSTER:-0}" == 1 ]]; then
    step "keeping cluster ${CLUSTER} (kind delete cluster --name ${CLUSTER})"
  else
    step "tear down"
    kind delete cluster --name "${CLUSTER}" || true
  fi
  exit "${status}"
}

for tool in docker kind kubectl helm; do
  command -v "${tool}" >/dev/null || die "${tool} is required on PATH"
done
compgen -G "${EXAMPLES}/*.yaml" >/dev/null || die "no example manifests in ${EXAMPLES}"

step "1/7 create kind cluster ${CLUSTER}"
kind create cluster --name "${CLUSTER}" --wait "${TIMEOUT}s"
trap on_exit EXIT

step "2/7 build images"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  docker build -f "${REPO}/deploy/docker/operator.Dockerfile" -t "${OPERATOR_IMAGE}" "${REPO}"
  docker build -f "${REPO}/deploy/docker/sidecar.Dockerfile" -t "${SIDECAR_IMAGE}" "${REPO}"
fi

step "3/7 load images into the cluster"
kind load docker-image --name "${CLUSTER}" "${OPERATOR_IMAGE}" "${SIDECAR_IMAGE}"

step "4/7 helm install ${RELEASE} into ${RELEASE_NAMESPACE}"
helm install "${RELEASE}" "${REPO}/helm/peertap" \
  --kube-context "kind-${CLUSTER}" \
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
ca_bundle_published() {
  [[ -n "$(k get mutatingwebhookconfiguration "${RELEASE}" \
    -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]] &&
    [[ -n "$(k get validatingwebhookconfiguration "${RELEASE}" \
      -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]]
}
wait_for "the operator to publish its webhook CA" ca_bundle_published

step "5/7 apply ${EXAMPLES}"
k -n "${NAMESPACE}" apply -f "${EXAMPLES}"

# The first example pod that asks for a VLAN by label, and that VLAN.
labelled="$(k -n "${NAMESPACE}" get pods -l peertap.io/vlans \
  -o jsonpath='{.items[*].metadata.name}')"
first_member="${labelled%% *}"
[[ -n "${first_member}" ]] || die "no example pod carries the peertap.io/vlans label"
vlan="$(k -n "${NAMESPACE}" get pod "${first_member}" \
  -o jsonpath='{.metadata.labels.peertap\.io/vlans}')"
vlan="${vlan%%,*}"
# A second member to ping, next to whatever the examples created.
k -n "${NAMESPACE}" run "${PEER_POD}" --image=busybox:1.36 \
  --labels="peertap.io/vlans=${vlan}" --restart=Never -- sleep infinity

step "6/7 wait for ${first_member} and ${PEER_POD} on CryptoVLAN ${vlan}"
for pod in "${first_member}" "${PEER_POD}"; do
  # The sidecar is a native sidecar: an init container that keeps running.
  containers="$(k -n "${NAMESPACE}" get pod "${pod}" \
    -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}')"
  [[ " ${containers} " == *" ${SIDECAR_CONTAINER} "* ]] ||
    die "pod ${pod} has no ${SIDECAR_CONTAINER} sidecar (containers: ${containers}): webhook not called?"
done
k -n "${NAMESPACE}" wait --for=condition=Ready "pod/${first_member}" "pod/${PEER_POD}" \
  --timeout "${TIMEOUT}s"

member_address() {
  k -n "${NAMESPACE}" get cryptovlan "${vlan}" \
    -o jsonpath="{.status.members[?(@.pod==\"$1\")].address}"
}
has_address() { [[ -n "$(member_address "$1")" ]]; }
wait_for "an address for ${first_member}" has_address "${first_member}"
wait_for "an address for ${PEER_POD}" has_address "${PEER_POD}"
k -n "${NAMESPACE}" get cryptovlans,mvlans

# Interface name: spec.interface.name, else pt-<label> cut to 15 characters.
iface="$(k -n "${NAMESPACE}" get cryptovlan "${vlan}" -o jsonpath='{.spec.interface.name}')"
if [[ -z "${iface}" ]]; then
  label="$(k -n "${NAMESPACE}" get cryptovlan "${vlan}" -o jsonpath='{.spec.label}')"
  iface="pt-${label:-${vlan}}"
  iface="${iface:0:15}"
fi

step "7/7 ping across ${iface}"
addr_first="$(member_address "${first_member}")"
addr_peer="$(member_address "${PEER_POD}")"
k -n "${NAMESPACE}" exec "${first_member}" -c "${SIDECAR_CONTAINER}" -- ip addr show "${iface}"
k -n "${NAMESPACE}" exec "${first_member}" -c "${SIDECAR_CONTAINER}" -- \
  ping -c 3 -W 5 -I "${iface}" "${addr_peer%/*}"
k -n "${NAMESPACE}" exec "${PEER_POD}" -c "${SIDECAR_CONTAINER}" -- \
  ping -c 3 -W 5 -I "${iface}" "${addr_first%/*}"

step "PASS: ${first_member} (${addr_first}) and ${PEER_POD} (${addr_peer}) share CryptoVLAN ${vlan}"
