# syntax=docker/dockerfile:1
# PeerTap operator: `python -m peertap.operator` (kopf handlers and the admission webhook).
# Build from the repository root:
#   docker build -f deploy/docker/operator.Dockerfile -t peertap-operator:dev .

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
# One wheel per distribution: the project and every dependency, built or downloaded here
# so the runtime stage needs neither a compiler nor an index.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgmp10 \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels peertap
# The chart runs the pod as 65532 with a read-only root filesystem.
RUN groupadd --system --gid 65532 peertap \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin peertap
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
# webhook (HTTPS), health (/healthz), metrics (/metrics)
EXPOSE 9443 8080 9090
ENTRYPOINT ["python", "-m", "peertap.operator"]
