#!/usr/bin/env bash
# Builds the real kube-apiserver and kube-controller-manager that the operator and
# chart tests run, once per machine, into a cache outside the repository:
#   ${PEERTAP_KUBE_CACHE:-/var/cache/peertap/kube}/<version>/bin/
# The version is the k8s.io/kubernetes release hack/kube-build/go.mod requires.
# Idempotent: when both binaries are there (and answer --version) it does nothing.
# A cold build downloads the modules through the Go module proxy and compiles
# Kubernetes: tens of minutes on two cores (docs/operations.md has the figures).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
module="$here/kube-build"
version="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$module/go.mod")"
if [ -z "$version" ]; then
    version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$module/go.mod")"
fi
cache="${PEERTAP_KUBE_CACHE:-/var/cache/peertap/kube}"
bin="$cache/$version/bin"
commands=(kube-apiserver kube-controller-manager)

have_all() {
    local c
    for c in "${commands[@]}"; do
        [ -x "$bin/$c" ] || return 1
        [ "$("$bin/$c" --version 2>/dev/null)" = "Kubernetes $version" ] || return 1
    done
}

if have_all; then
    echo "kube binaries $version: $bin (cached)"
    exit 0
fi

go="${GO:-}"
if [ -z "$go" ]; then
    if [ -x /usr/local/go/bin/go ]; then
        go=/usr/local/go/bin/go
    else
        go="$(command -v go || true)"
    fi
fi
if [ -z "$go" ]; then
    echo "build-kube.sh: no Go toolchain (set GO=/path/to/go)" >&2
    exit 1
fi

mkdir -p "$bin"
# Build into a temporary directory beside the cache, then move: a build that is
# interrupted never leaves a half-written binary that looks cached.
staging="$(mktemp -d "$cache/$version/.build.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

echo "building kube binaries $version with $("$go" version) into $bin (one time per machine)"
start=$(date +%s)
packages=()
for c in "${commands[@]}"; do
    packages+=("k8s.io/kubernetes/cmd/$c")
done
# The version the binaries report (/version, --version) is stamped at link time, as
# Kubernetes' own build does (hack/lib/version.sh there).
major_minor="${version#v}"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=${major_minor%%.*}"
    minor="${major_minor#*.}"
    stamp+=" -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
    stamp+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
# GOTOOLCHAIN=auto: should the release need a newer Go than the local one, the go
# command fetches that toolchain through the module proxy.
(
    cd "$module"
    GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
        "$go" build -trimpath -ldflags "-s -w$stamp" -o "$staging/" "${packages[@]}"
)
for c in "${commands[@]}"; do
    mv -f "$staging/$c" "$bin/$c"
done
have_all
echo "kube binaries $version built in $(($(date +%s) - start)) s: $bin"
