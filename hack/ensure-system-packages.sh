#!/bin/sh
# Installs the system tools the venv build, the lab, the demo, the tests and the
# benchmarks use, only those missing: command -> Debian package.
set -eu
missing=""
need() {
    command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
need ip iproute2
need ping iputils-ping
need arping iputils-arping
need iperf3 iperf3
need tcpdump tcpdump
need tincd tinc
need openvpn openvpn
need curl curl
need ss iproute2
# Traffic control (tc tbf) for the multi-path benchmark; nftables for its lossy runs
# (1% random drop: this kernel has no netem) and the local clusters' Service rules.
need tc iproute2
need nft nftables
# The web UI's browser test (Playwright drives this Chromium; it downloads none).
need chromium chromium
# Trace decoding with the shipped Wireshark dissector.
need tshark tshark
# Building the venv compiles fastecdsa (a libp2p dependency) against GMP.
need gcc gcc
dpkg -s libgmp-dev >/dev/null 2>&1 || missing="$missing libgmp-dev"
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing system packages:$missing (run as root or install them)" >&2
        exit 1
    fi
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # tshark's package asks whether non-root users may capture: no, and do not ask.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
