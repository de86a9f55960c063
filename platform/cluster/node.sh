#!/usr/bin/env bash
# The real node of the local cluster: containerd (with Debian's runc), a kubelet, kube-proxy,
# CoreDNS and a local OCI registry, beside a kwok control plane started by cluster.sh.
#
#   node.sh up --run-dir DIR --kubeconfig FILE   start the node of the cluster whose admin
#                                                kubeconfig is FILE; state in DIR/node
#   node.sh down --run-dir DIR                   stop it and remove everything it made
#   node.sh status --run-dir DIR                 exit 0 when every node process is alive
#   node.sh leftovers                            list what a node left on this machine
#                                                (exit 1 when anything is left)
#   node.sh registry --run-dir DIR               the registry address, 127.0.0.1:PORT
#
# One real node runs on a machine at a time (its bridge, its iptables rules and kube-proxy's
# are the machine's): a second `up` fails and names the cluster that holds it.
#
# Network: pods get addresses from POD_CIDR (198.19.128.0/20, in RFC 2544's 198.18.0.0/15) on the
# bridge BRIDGE, which this script creates; the bridge's address is the node's IP and the
# cluster DNS. Packets from pods are forwarded only back onto the bridge (forwarding is enabled
# on the bridge alone, and FLOTILLA-NODE drops the rest), nothing is masqueraded to the outside,
# and CoreDNS answers cluster names only. NodePorts listen on 127.0.0.1 only.
set -euo pipefail
shopt -s inherit_errexit nullglob
# This file holds the settings and the command line; the rest is in node/, one file per concern,
# and the configuration files the node writes are node/templates/*.tmpl (see README.md).

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$CLUSTER_DIR/versions.env"
CACHE_ROOT="${FLOTILLA_CACHE:-$HOME/.cache/flotilla}"

NODE_NAME=flotilla-node
BRIDGE=flotilla0
POD_CIDR=198.19.128.0/20
NODE_IP=198.19.128.1
CGROUP_ROOT=flotilla-node
# Static PersistentVolumes of the default StorageClass (each claim takes one; none is reused).
VOLUMES="${FLOTILLA_NODE_VOLUMES:-24}"
CHAIN=FLOTILLA-NODE
# containerd's socket: a short fixed path (a unix socket path has at most 107 bytes, and a run
# directory may be deep); one real node per machine, so one socket.
SOCKET_DIR=/run/flotilla-node
SOCKET="$SOCKET_DIR/containerd.sock"
# The kubelet's root (pod volumes, its own sockets): short and fixed for the same reason.
KUBELET_ROOT=/var/lib/flotilla-node/kubelet
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1
RUNC="${FLOTILLA_RUNC:-/usr/sbin/runc}"
LOCK="$CACHE_ROOT/real-node.lock"
OWNER="$CACHE_ROOT/real-node.owner"
# The registry's blobs outlive a cluster: images pushed once are pulled by every later node.
REGISTRY_DATA="$CACHE_ROOT/registry"

log() { printf 'node.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

declare -A BIN_DIRS=()
resolve_bins() {
  local c
  for c in kube containerd cni coredns; do
    BIN_DIRS[$c]="$("$CLUSTER_DIR/build-tools.sh" --bin-dir "$c" 2>/dev/null)" \
      || die "$c is not built; run: $CLUSTER_DIR/build-tools.sh $c (or make cluster-tools)"
  done
}

node_dir() { echo "$RUN_DIR/node"; }

# The node's parts, by concern; each is sourced, and all share the settings above.
# shellcheck source=node/render.sh
source "$CLUSTER_DIR/node/render.sh"
# shellcheck source=node/config.sh
source "$CLUSTER_DIR/node/config.sh"
# shellcheck source=node/host.sh
source "$CLUSTER_DIR/node/host.sh"
# shellcheck source=node/up.sh
source "$CLUSTER_DIR/node/up.sh"
# shellcheck source=node/down.sh
source "$CLUSTER_DIR/node/down.sh"
# shellcheck source=node/inspect.sh
source "$CLUSTER_DIR/node/inspect.sh"

main() {
  local sub="${1:-}"
  [[ $# -gt 0 ]] && shift
  RUN_DIR=""; KUBECONFIG_FILE=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --run-dir) RUN_DIR="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
      --kubeconfig) KUBECONFIG_FILE="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
      *) die "$sub: unknown argument $1 (see --help)" ;;
    esac
  done
  case "$sub" in
    up|down|status|registry) [[ -n "$RUN_DIR" ]] || die "$sub needs --run-dir DIR" ;;
  esac
  case "$sub" in
    up) [[ -n "$KUBECONFIG_FILE" ]] || die "up needs --kubeconfig FILE"; cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    leftovers) cmd_leftovers ;;
    registry)
      [[ -f "$RUN_DIR/node/registry.address" ]] || die "no real node in $RUN_DIR (make cluster-up starts one)"
      cat "$RUN_DIR/node/registry.address"
      ;;
    -h|--help|help|"") sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' ;;
    *) die "unknown command $sub (see --help)" ;;
  esac
}

main "$@"
