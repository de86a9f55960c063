#!/usr/bin/env bash
# Installs what `pipelines build` needs to build and push images without a Docker engine:
# buildah (with runc), debootstrap (the local base images), gcc (the pause program is checked
# on the host by the tests) and docker-registry (the tests' and the cluster's registry).
# Idempotent: apt-get runs only when a binary is missing, and says what it installs.
set -euo pipefail
exec "$(dirname "$0")/../cluster/debian-packages.sh" "image builds" \
  buildah=buildah runc=runc debootstrap=debootstrap docker-registry=docker-registry gcc=gcc
