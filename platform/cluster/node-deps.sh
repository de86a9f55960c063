#!/usr/bin/env bash
# Debian packages the real node needs, installed only when missing: runc (Debian's, built with
# seccomp), iptables (kube-proxy and the node's isolation rules), conntrack, and docker-registry
# (the local OCI registry).
set -euo pipefail
exec "$(dirname "$0")/debian-packages.sh" "the real node" \
  runc=runc iptables=iptables conntrack=conntrack docker-registry=docker-registry
