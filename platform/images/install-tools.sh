#!/usr/bin/env bash
# Installs what `pipelines build` needs to build and push images without a Docker engine:
# buildah (with runc), debootstrap (the local base images), gcc (the pause program is checked
# on the host by the tests) and docker-registry (the tests' and the cluster's registry).
# Idempotent: apt-get runs only when a binary is missing, and says what it installs.
set -euo pipefail

declare -A PACKAGE_OF=(
  [buildah]=buildah
  [runc]=runc
  [debootstrap]=debootstrap
  [docker-registry]=docker-registry
  [gcc]=gcc
)

missing=()
for binary in buildah runc debootstrap docker-registry gcc; do
  if ! command -v "$binary" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$binary" ]; then
    missing+=("${PACKAGE_OF[$binary]}")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "==> image tools present: buildah, runc, debootstrap, docker-registry, gcc"
  exit 0
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "==> installing ${missing[*]} (Debian packages, one time): apt-get update && apt-get install -y ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
echo "==> installed ${missing[*]}"
