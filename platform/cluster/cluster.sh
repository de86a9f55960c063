#!/usr/bin/env bash
# Local Kubernetes control plane (kwok) on loopback, from the binaries built by
# build-tools.sh. Thin wrapper around `kwokctl --runtime binary`; never
# downloads anything and never touches ~/.kube/config.
#
#   cluster.sh create [--name N] [--port P] [--nodes K] [--config FILE]... [--wait D] [-- KWOKCTL_ARGS...]
#   cluster.sh delete [--name N]
#   cluster.sh kubeconfig [--name N]      print the path of the cluster's kubeconfig
#   cluster.sh config                     print the generated kwokctl config
#   cluster.sh kubectl [--name N] ARGS... kubectl against the cluster
#   cluster.sh kwokctl ARGS...            the built kwokctl with this workdir
#
# --name     cluster name (default: $FLOTILLA_CLUSTER_NAME or "flotilla")
# --port     kube-apiserver port on 127.0.0.1 (default: a free random port)
# --nodes    number of fake kwok nodes to add after start (default 1)
# --config   extra kwokctl config documents (e.g. kwok Stage objects for a
#            readiness delay); repeatable. NOTE: passing any Stage replaces
#            kwokctl's default node/pod stages, so include node stages too.
# --wait     how long kwokctl waits for the cluster to be ready (default 60s)
#
# Cluster state (pki, kubeconfig, logs, etcd data, pids) lives in
#   $KWOK_WORKDIR/clusters/<name>/   with KWOK_WORKDIR defaulting to
#   ${FLOTILLA_CACHE:-$HOME/.cache/flotilla}/kwok
# The components run detached (setsid) until `cluster.sh delete`.
set -euo pipefail

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$CLUSTER_DIR/versions.env"
CACHE_ROOT="${FLOTILLA_CACHE:-$HOME/.cache/flotilla}"
export KWOK_WORKDIR="${KWOK_WORKDIR:-$CACHE_ROOT/kwok}"
NAME="${FLOTILLA_CLUSTER_NAME:-flotilla}"

die() { printf 'cluster.sh: %s\n' "$*" >&2; exit 1; }

bin() {
  "$CLUSTER_DIR/build-tools.sh" --path "$1" 2>/dev/null \
    || die "$1 is not built; run: $CLUSTER_DIR/build-tools.sh"
}

# KwokctlConfiguration pointing every component at a local binary, bound to
# 127.0.0.1 (kwokctl's default bindAddress is 0.0.0.0).
gen_config() {
  cat <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeVersion: ${KUBE_VERSION}
  kubeApiserverBinary: $(bin kube-apiserver)
  kubeControllerManagerBinary: $(bin kube-controller-manager)
  kubeSchedulerBinary: $(bin kube-scheduler)
  kubectlBinary: $(bin kubectl)
  kwokControllerBinary: $(bin kwok)
  etcdBinary: $(bin etcd)
EOF
}

cmd_create() {
  local port="" wait="60s" nodes=1
  local -a configs=() extra=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --name) NAME="$2"; shift ;;
      --port) port="$2"; shift ;;
      --config) configs+=("$2"); shift ;;
      --wait) wait="$2"; shift ;;
      --nodes) nodes="$2"; shift ;;
      --) shift; extra=("$@"); break ;;
      *) die "create: unknown argument $1" ;;
    esac
    shift
  done
  mkdir -p "$KWOK_WORKDIR"
  CONFIG_TMP="$(mktemp "$KWOK_WORKDIR/.kwokctl-config.XXXXXX.yaml")"
  trap 'rm -f "$CONFIG_TMP"' EXIT
  gen_config > "$CONFIG_TMP"
  local -a args=(create cluster --name "$NAME" --config "$CONFIG_TMP" --kubeconfig "" --wait "$wait")
  local c
  for c in "${configs[@]}"; do args+=(--config "$c"); done
  [[ -n "$port" ]] && args+=(--kube-apiserver-port "$port")
  "$(bin kwokctl)" "${args[@]}" "${extra[@]}"
  if [[ "$nodes" -gt 0 ]]; then
    "$(bin kwokctl)" scale node --name "$NAME" --replicas "$nodes"
  fi
}

parse_name() {
  # Sets REST to the remaining args after an optional leading --name N.
  REST=()
  if [[ "${1:-}" == "--name" ]]; then NAME="$2"; shift 2; fi
  REST=("$@")
}

kubeconfig_path() { echo "$KWOK_WORKDIR/clusters/$NAME/kubeconfig.yaml"; }

main() {
  local sub="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$sub" in
    create) cmd_create "$@" ;;
    delete)
      parse_name "$@"
      # kwokctl 0.8 rejects --kubeconfig "" on delete ("empty path"); point it
      # at the cluster's own kubeconfig (removed anyway) so ~/.kube/config is
      # left alone.
      "$(bin kwokctl)" delete cluster --name "$NAME" --kubeconfig "$(kubeconfig_path)" "${REST[@]}"
      ;;
    kubeconfig)
      parse_name "$@"
      [[ -f "$(kubeconfig_path)" ]] || die "no cluster $NAME in $KWOK_WORKDIR"
      kubeconfig_path
      ;;
    config) gen_config ;;
    kubectl)
      parse_name "$@"
      "$(bin kubectl)" --kubeconfig "$(kubeconfig_path)" "${REST[@]}"
      ;;
    kwokctl) exec "$(bin kwokctl)" "$@" ;;
    -h|--help|help|"") sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' ;;
    *) die "unknown command $sub (see --help)" ;;
  esac
}

main "$@"
