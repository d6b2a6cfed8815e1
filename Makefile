# PeerTap developer entry points. Every target builds .venv/ from pyproject.toml
# when it is missing or older than pyproject.toml, and installs the system
# tools it needs with apt-get when they are absent.

export PYTHONSAFEPATH := 1

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FUZZ_STAMP := $(VENV)/.installed-fuzz
# make fuzz RUNS=20000 TARGET=mls_message: inputs per target, one target (default: all)
RUNS ?= 1000000
TARGET ?=
# make e2e-local CLUSTERS=1: the in-cluster case only
CLUSTERS ?= 2

.PHONY: help venv sysdeps kube-bins test test-clusters demo e2e-local bench bench-mls bench-datagram bench-private bench-sender bench-kube fuzz lint format crds crds-check clean

help:
	@echo "make demo       - three pods (a - relay - b) on an encrypted VLAN: ping, ARP, iperf3"
	@echo "make test       - lint, then every test (unit, MLS vectors, netns, operator, chart)"
	@echo "make test-clusters - the two-cluster Kubernetes test (left out of make test)"
	@echo "make e2e-local  - two local Kubernetes clusters, chart installed, pods ping across relays (CLUSTERS=1)"
	@echo "make bench      - throughput/latency vs plain veth, tinc and OpenVPN"
	@echo "make bench-mls  - MLS commit/join timings for 10..10000 members"
	@echo "make bench-datagram - datagram path against trunk stream, side by side"
	@echo "make bench-private - private VLAN: first ping at cold start and joining 10 members, rekey of 50"
	@echo "make bench-sender - private VLAN: per-frame cost of sender-bound frames, time to revoke"
	@echo "make fuzz       - coverage-guided fuzzing of every peer-input parser (RUNS=, TARGET=)"
	@echo "make lint       - ruff and mypy --strict on sidecar/ and operator/"
	@echo "make kube-bins  - build kube-apiserver and kube-controller-manager once (cached)"
	@echo "make bench-kube - start time and memory of the tests' Kubernetes control plane"
	@echo "make crds       - regenerate CRDs, the chart's copies and the values schema"

$(STAMP): pyproject.toml
	sh hack/ensure-system-packages.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

venv: $(STAMP)

$(FUZZ_STAMP): $(STAMP) pyproject.toml
	$(VENV)/bin/pip install --quiet -e '.[test,dev,fuzz]'
	touch $(FUZZ_STAMP)

sysdeps:
	sh hack/ensure-system-packages.sh

# The real kube-apiserver and kube-controller-manager the operator and chart tests
# run, built once per machine into ${PEERTAP_KUBE_CACHE:-/var/cache/peertap/kube}.
kube-bins:
	bash hack/build-kube.sh

# The two-cluster run (tests/e2e/test_e2e_local.py, 2-3 minutes) is left out of make
# test to keep it short; make test-clusters runs it, make e2e-local shows the same flow.
# Two workers: the network-namespace tests run one after the other on one of them
# (tests/conftest.py groups them), everything else spreads over both.
test: venv sysdeps lint kube-bins
	$(VENV)/bin/pytest -m "not clusters" -n 2 --dist loadgroup --durations=30

test-clusters: venv sysdeps kube-bins
	$(VENV)/bin/pytest -m clusters tests/e2e

demo: venv sysdeps
	$(PY) hack/demo.py $(DEMO_ARGS)

e2e-local: venv sysdeps kube-bins
	$(PY) hack/e2e-local.py --clusters $(CLUSTERS)

bench: venv sysdeps
	$(PY) hack/bench.py

bench-mls: venv
	$(PY) hack/bench-mls.py

bench-datagram: venv sysdeps
	$(PY) hack/bench-datagram.py

bench-private: venv sysdeps
	$(PY) hack/bench-private.py

bench-sender: venv sysdeps
	$(PY) hack/bench-sender.py

bench-kube: venv kube-bins
	$(PY) hack/bench-kube.py

fuzz: $(FUZZ_STAMP)
	$(PY) hack/fuzz.py --runs $(RUNS) $(if $(TARGET),--target $(TARGET))

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	sh hack/mypy-layout.sh
	$(VENV)/bin/mypy -p peertap.sidecar -p peertap.operator

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

crds: venv
	$(PY) hack/gen-crds.py
	$(PY) hack/sync-chart-crds.py
	$(PY) hack/gen-values-schema.py

crds-check: venv
	$(PY) hack/gen-crds.py --check
	$(PY) hack/sync-chart-crds.py --check
	$(PY) hack/gen-values-schema.py --check

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
