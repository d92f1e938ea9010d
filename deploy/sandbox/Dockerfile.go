# The sandbox image for Go repositories: Go from the official image on what every sandbox
# has (deploy/sandbox/Dockerfile: Python, pip, pytest, git, a C toolchain for cgo, the
# `sandbox` user, /workspace). scripts/build-ecosystem-image.sh go builds an equivalent
# image offline from Debian's packages; keep the two in step (deploy/sandbox/README.md).
#   docker build -f deploy/sandbox/Dockerfile.go -t qwenfix-sandbox:go deploy/sandbox
# Another Go (a go.mod's `toolchain` or `go` line picks qwenfix-sandbox:goMAJOR.MINOR):
#   docker build -f deploy/sandbox/Dockerfile.go --build-arg GO_VERSION=1.23 \
#       -t qwenfix-sandbox:go1.23 deploy/sandbox
# On another ecosystem's sandbox image, for a repository that needs both (the tag and the
# label name the ecosystems sorted and joined by "-"):
#   docker build -f deploy/sandbox/Dockerfile.go --build-arg BASE=qwenfix-sandbox:node \
#       --build-arg ECOSYSTEMS=go-node -t qwenfix-sandbox:go-node deploy/sandbox
ARG GO_VERSION=1.24
# The image Go is added to: the official Python image, or a sandbox image already.
ARG BASE=python:3.12-slim-bookworm
FROM golang:${GO_VERSION}-bookworm AS go

FROM ${BASE}

# What every sandbox has, as deploy/sandbox/Dockerfile installs it; skipped on a base that
# is a sandbox image already (it has the sandbox user). Commands run as this unprivileged
# user; only the setup phase runs as root.
RUN if ! id -u sandbox >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends git ca-certificates procps build-essential \
        && rm -rf /var/lib/apt/lists/* \
        && pip install --no-cache-dir pytest \
        && useradd --create-home --uid 1000 --shell /bin/bash sandbox \
        && mkdir -p /workspace && chown sandbox:sandbox /workspace; \
    fi

COPY --from=go /usr/local/go /usr/local/go
ENV PATH=/home/sandbox/go/bin:/usr/local/go/bin:$PATH
# Never download another toolchain for a go.mod's `toolchain` line: the run says which Go
# it asked for and which it got instead. Modules and the build cache live in the sandbox
# user's home, so that setup (as root) warms what the tests (as the sandbox user) use.
ENV GOTOOLCHAIN=local GOPATH=/home/sandbox/go GOFLAGS=-mod=mod GOCACHE=/home/sandbox/.cache/go-build
RUN mkdir -p /home/sandbox/go /home/sandbox/.cache/go-build \
    && chown -R sandbox:sandbox /home/sandbox/go /home/sandbox/.cache \
    && go version

ARG ECOSYSTEMS=go
LABEL io.qwenfix.ecosystems="${ECOSYSTEMS}"
ENV CI=true NO_COLOR=1
ENV PYTHONDONTWRITEBYTECODE=1
WORKDIR /workspace
