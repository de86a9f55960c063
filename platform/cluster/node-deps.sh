#!/usr/bin/env bash
# Debian packages the real node needs, installed only when missing (idempotent, prints what it
# does): runc (Debian's, built with seccomp), iptables (kube-proxy and the node's isolation rules),
# conntrack, and docker-registry (the local OCI registry).
set -euo pipefail

declare -A NEEDS=(
  [/usr/sbin/runc]=runc
  [/usr/sbin/iptables]=iptables
  [/usr/sbin/conntrack]=conntrack
  [/usr/bin/docker-registry]=docker-registry
)
missing=()
for path in "${!NEEDS[@]}"; do
  [[ -x "$path" ]] || missing+=("${NEEDS[$path]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO=sudo
echo "==> installing Debian packages for the real node: ${missing[*]} (one time)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
