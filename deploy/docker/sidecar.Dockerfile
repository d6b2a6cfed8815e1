# syntax=docker/dockerfile:1
# PeerTap sidecar and relay: `peertap run --config /etc/peertap/node.json`.
# The operator injects it into labelled pods (CAP_NET_ADMIN, /dev/net/tun) and runs
# it as the MVLAN relay. Build from the repository root:
#   docker build -f deploy/docker/sidecar.Dockerfile -t peertap-sidecar:dev .

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# fastecdsa (pulled in by libp2p) ships no wheel and compiles against GMP.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libgmp-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sidecar/ sidecar/
COPY operator/ operator/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# iproute2: the node configures its TAP devices; iputils-ping: checks across a VLAN.
RUN apt-get update \
    && apt-get install -y --no-install-recommends iproute2 iputils-ping libgmp10 \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels peertap
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The injected sidecar starts as root with NET_ADMIN, SETUID and SETGID only, and setpriv
# (util-linux, essential in Debian) at once becomes user 65532 keeping NET_ADMIN alone as
# an ambient capability: peertap runs unprivileged. Relays run as 65532 from the start.
# Fail the build if setpriv is missing.
RUN command -v setpriv
# trunk (libp2p TCP), API (/readyz, /status, /metrics)
EXPOSE 4001 9464
ENTRYPOINT ["peertap"]
CMD ["run", "--config", "/etc/peertap/node.json"]
