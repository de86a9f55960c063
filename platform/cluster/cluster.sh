#!/usr/bin/env bash
# Local Kubernetes control plane (kwok) on loopback, from the binaries built by
# build-tools.sh, with a real node (node.sh: kubelet, containerd, runc, CNI bridge,
# kube-proxy, CoreDNS, a local registry) and/or kwok's fake nodes. Thin wrapper
# around `kwokctl --runtime binary`; never downloads anything and never touches
# ~/.kube/config.
#
#   cluster.sh up [--run-dir DIR] [--name N] [--nodes K] [--no-real-node]
#                                         start the cluster of DIR unless it is already up
#                                         (idempotent); its kubeconfig is DIR/kubeconfig,
#                                         its registry's address DIR/registry
#   cluster.sh down [--run-dir DIR] [--name N]
#                                         stop that cluster and remove its state
#   cluster.sh create [--name N] [--port P] [--nodes K] [--real-node] [--config FILE]...
#                     [--kwok-stages] [--wait D] [-- KWOKCTL_ARGS...]
#   cluster.sh delete [--name N] [--run-dir DIR]
#   cluster.sh status [--name N] [--run-dir DIR]      exit 0 when the API server is ready
#   cluster.sh kubeconfig [--name N] [--run-dir DIR]  path of the cluster's own kubeconfig
#   cluster.sh config                     print the generated kwokctl config
#   cluster.sh kubectl [--name N] [--run-dir DIR] ARGS...   kubectl against the cluster
#   cluster.sh kwokctl ARGS...            the built kwokctl with this workdir
#
# --run-dir  the directory of an `up` cluster: kwok's state is in DIR/kwok
#            (KWOK_WORKDIR). up and down default to .run/cluster in the checkout
# --name     cluster name (default: $FLOTILLA_CLUSTER_NAME or "flotilla")
# --port     kube-apiserver port on 127.0.0.1 (default: a free port)
# --nodes    number of fake kwok nodes, waited for until Ready (create: default 2;
#            up: default 0)
# --real-node / --no-real-node   whether the cluster gets the machine's one real node
#            (create: off by default; up: on by default). Needs root.
# --config   extra kwokctl config documents; repeatable
# --kwok-stages  use kwok's default node and pod stages instead of stages.yaml
#            (pods Ready at once; no readiness delay, no never-ready marker)
# --wait     how long to wait for the cluster and its nodes (default 60s)
#
# Cluster state (pki, kubeconfig, logs, etcd data, pids) lives in
#   $KWOK_WORKDIR/clusters/<name>/   with KWOK_WORKDIR defaulting to
#   ${FLOTILLA_CACHE:-$HOME/.cache/flotilla}/kwok
# The components run detached (setsid) until `cluster.sh delete` (or down).
set -euo pipefail
shopt -s inherit_errexit

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$CLUSTER_DIR/versions.env"
CACHE_ROOT="${FLOTILLA_CACHE:-$HOME/.cache/flotilla}"
export KWOK_WORKDIR="${KWOK_WORKDIR:-$CACHE_ROOT/kwok}"
NAME="${FLOTILLA_CLUSTER_NAME:-flotilla}"
DEFAULT_RUN_DIR="$(cd "$CLUSTER_DIR/../.." && pwd)/.run/cluster"
STAGES="$CLUSTER_DIR/stages.yaml"

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Bin dirs of the built components, looked up once (each lookup hashes the
# tools module): bin NAME then prints a binary's path without a lookup.
declare -A BIN_DIRS=()
resolve_bins() {
  local c
  for c in kube etcd kwok; do
    BIN_DIRS[$c]="$("$CLUSTER_DIR/build-tools.sh" --bin-dir "$c" 2>/dev/null)" \
      || die "$c is not built; run: $CLUSTER_DIR/build-tools.sh (or make cluster-tools)"
  done
}
bin() {
  case "$1" in
    kwok|kwokctl) echo "${BIN_DIRS[kwok]}/$1" ;;
    etcd) echo "${BIN_DIRS[etcd]}/$1" ;;
    *) echo "${BIN_DIRS[kube]}/$1" ;;
  esac
}

now_ms() { date +%s%3N; }

# Fake addresses, all in 198.18.0.0/15 (RFC 2544, reserved for benchmarking, so
# no real network uses it). kwok's defaults (192.0.2.0/24 and fd00::/64 for
# nodes and pods, 10.0.0.0/24 for services) are real addresses on some
# machines: this very sandbox is 192.0.2.2 and fd00::2.
NODE_IP=198.18.0.1        # node N gets 198.18.0.(1+N)
POD_CIDR=198.19.0.0/24    # node N gets 198.19.N.0/24
SERVICE_CIDR=198.18.16.0/20
NODE_PORT_RANGE=30000-30999

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
componentsPatches:
  - name: kube-apiserver
    extraArgs:
      - key: service-cluster-ip-range
        value: ${SERVICE_CIDR}
      # NodePorts answer on 127.0.0.1 (kube-proxy): a range of their own, below the ports
      # kwokctl takes (down from 32767) and above those the tests take (devkit.localstack.ports).
      - key: service-node-port-range
        value: ${NODE_PORT_RANGE}
      # The real node's kubelet trusts the cluster CA: logs, exec and port-forward go to it
      # with the admin's client certificate (kwokctl makes both in the cluster's pki).
      - key: kubelet-client-certificate
        value: ${KWOK_WORKDIR}/clusters/${NAME}/pki/admin.crt
      - key: kubelet-client-key
        value: ${KWOK_WORKDIR}/clusters/${NAME}/pki/admin.key
      # By its IP (on the node's bridge), never by a host name the machine's resolver would be
      # asked for.
      - key: kubelet-preferred-address-types
        value: InternalIP
  # kwok simulates its own nodes only (kwokctl scale marks them), never the real node.
  - name: kwok-controller
    extraArgs:
      - key: manage-all-nodes
        value: "false"
      - key: manage-nodes-with-annotation-selector
        value: kwok.x-k8s.io/node=fake
EOF
}

state_dir() { echo "$KWOK_WORKDIR/clusters/$NAME"; }
kubeconfig_path() { echo "$(state_dir)/kubeconfig.yaml"; }

kubectl_() { "$(bin kubectl)" --kubeconfig "$(kubeconfig_path)" "$@"; }

is_ready() {
  [[ -f "$(kubeconfig_path)" ]] && kubectl_ get --raw /readyz --request-timeout=5s >/dev/null 2>&1
}

cmd_create() {
  local port="" wait="60s" nodes=2 kwok_stages=0 real_node=0
  local -a configs=() extra=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --name) NAME="$2"; shift ;;
      --port) port="$2"; shift ;;
      --config) configs+=("$2"); shift ;;
      --kwok-stages) kwok_stages=1 ;;
      --wait) wait="$2"; shift ;;
      --nodes) nodes="$2"; shift ;;
      --real-node) real_node=1 ;;
      --) shift; extra=("$@"); break ;;
      *) die "create: unknown argument $1 (see --help)" ;;
    esac
    shift
  done
  mkdir -p "$KWOK_WORKDIR"
  CONFIG_TMP="$(mktemp "$KWOK_WORKDIR/.kwokctl-config.XXXXXX.yaml")"
  trap 'rm -f "$CONFIG_TMP"' EXIT
  gen_config > "$CONFIG_TMP"
  local -a args=(create cluster --name "$NAME" --config "$CONFIG_TMP" --kubeconfig "" --wait "$wait")
  [[ "$kwok_stages" == 1 ]] || args+=(--config "$STAGES")
  local c
  for c in "${configs[@]}"; do args+=(--config "$c"); done
  [[ -n "$port" ]] && args+=(--kube-apiserver-port "$port")

  # Every kwokctl picks its ports by probing down from 32767, so two clusters
  # created at the same moment (parallel test sessions) would pick the same
  # ones. One machine-wide lock, held until the components listen, prevents it.
  # The components must not inherit the lock's fd, or they would hold it.
  local lock_fd
  mkdir -p "$CACHE_ROOT"
  exec {lock_fd}>"$CACHE_ROOT/.kwokctl-create.lock"
  flock "$lock_fd"
  "$(bin kwokctl)" "${args[@]}" "${extra[@]}" {lock_fd}>&-
  exec {lock_fd}>&-

  if [[ "$nodes" -gt 0 ]]; then
    "$(bin kwokctl)" scale node --name "$NAME" --replicas "$nodes" \
      --param ".nodeIPs = [\"$NODE_IP\"]" --param ".podCIDRs = [\"$POD_CIDR\"]"
    kubectl_ wait --for=condition=Ready node --all --timeout="$wait" >/dev/null
  fi
  if [[ "$real_node" == 1 ]]; then
    "$CLUSTER_DIR/node.sh" up --run-dir "$(state_dir)" --kubeconfig "$(kubeconfig_path)"
  fi
}

# Leading --name N / --run-dir DIR (either order); REST gets the other args.
# --run-dir DIR means KWOK_WORKDIR=DIR/kwok.
NAME_GIVEN=0
parse_common() {
  RUN_DIR=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --name) NAME="$2"; NAME_GIVEN=1; shift 2 ;;
      --run-dir) RUN_DIR="$2"; shift 2 ;;
      *) break ;;
    esac
  done
  REST=("$@")
  if [[ -n "$RUN_DIR" ]]; then export KWOK_WORKDIR="$RUN_DIR/kwok"; fi
}

cmd_delete() {
  # The real node first: its mounts and containers live in the state kwokctl removes.
  if [[ -d "$(state_dir)/node" ]]; then "$CLUSTER_DIR/node.sh" down --run-dir "$(state_dir)"; fi
  # kwokctl 0.8 rejects --kubeconfig "" on delete ("empty path"); point it
  # at the cluster's own kubeconfig (removed anyway) so ~/.kube/config is
  # left alone.
  "$(bin kwokctl)" delete cluster --name "$NAME" --kubeconfig "$(kubeconfig_path)" "$@"
}

cmd_up() {
  local nodes=0 real_node=1 start
  RUN_DIR="$DEFAULT_RUN_DIR"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --name) NAME="$2"; shift 2 ;;
      --run-dir) RUN_DIR="$2"; shift 2 ;;
      --nodes) nodes="$2"; shift 2 ;;
      --no-real-node) real_node=0; shift ;;
      --real-node) real_node=1; shift ;;
      *) die "up: unknown argument $1 (see --help)" ;;
    esac
  done
  mkdir -p "$RUN_DIR"
  RUN_DIR="$(cd "$RUN_DIR" && pwd)"
  export KWOK_WORKDIR="$RUN_DIR/kwok"
  if is_ready; then
    if [[ "$real_node" == 1 ]] && ! "$CLUSTER_DIR/node.sh" status --run-dir "$(state_dir)" >/dev/null 2>&1; then
      log "cluster $NAME is up, its real node is not: starting it"
      "$CLUSTER_DIR/node.sh" up --run-dir "$(state_dir)" --kubeconfig "$(kubeconfig_path)"
    fi
    publish_run_files
    log "cluster $NAME is already up: $(server_of "$RUN_DIR/kubeconfig")"
    log "kubeconfig: $RUN_DIR/kubeconfig"
    return 0
  fi
  if [[ -d "$KWOK_WORKDIR/clusters/$NAME" ]]; then
    log "cluster $NAME in $RUN_DIR is not answering (stopped, or the machine restarted): recreating it"
    cmd_delete >/dev/null 2>&1 || true
    rm -rf "${KWOK_WORKDIR:?}/clusters/$NAME"
  fi
  rm -rf "$RUN_DIR/failed-logs"
  start=$(now_ms)
  local -a create_args=(--nodes "$nodes")
  [[ "$real_node" == 1 ]] && create_args+=(--real-node)
  cmd_create "${create_args[@]}" 2> "$RUN_DIR/create.log" || {
    cat "$RUN_DIR/create.log" >&2
    cp -r "$KWOK_WORKDIR/clusters/$NAME/logs" "$RUN_DIR/failed-logs" 2>/dev/null || true
    cp -r "$KWOK_WORKDIR/clusters/$NAME/node/logs" "$RUN_DIR/failed-logs/node" 2>/dev/null || true
    cmd_delete >/dev/null 2>&1 || true
    die "could not start cluster $NAME (log above; component logs in $RUN_DIR/failed-logs/)"
  }
  grep '^node.sh' "$RUN_DIR/create.log" >&2 || true
  publish_run_files
  local ms=$(( $(now_ms) - start )) what="$nodes fake nodes"
  [[ "$real_node" == 1 ]] && what="real node flotilla-node, registry $(cat "$RUN_DIR/registry"), $nodes fake nodes"
  log "cluster $NAME is up in $((ms / 1000)).$(( (ms % 1000) / 100 )) s: $(server_of "$RUN_DIR/kubeconfig"), $what"
  if [[ "$RUN_DIR" == "$DEFAULT_RUN_DIR" ]]; then
    log "kubeconfig: $RUN_DIR/kubeconfig   (eval \"\$(make -s env)\" exports KUBECONFIG)"
  else
    log "kubeconfig: $RUN_DIR/kubeconfig   (export KUBECONFIG=$RUN_DIR/kubeconfig)"
  fi
}

# The kubeconfig (mode 0600) and the registry address, where make and the demo look for them.
publish_run_files() {
  install -m 600 "$(kubeconfig_path)" "$RUN_DIR/kubeconfig"
  if [[ -f "$(state_dir)/registry" ]]; then cp "$(state_dir)/registry" "$RUN_DIR/registry"; else rm -f "$RUN_DIR/registry"; fi
}

cmd_down() {
  parse_common "$@"
  [[ ${#REST[@]} -eq 0 ]] || die "down: unknown argument ${REST[0]} (see --help)"
  [[ -n "$RUN_DIR" ]] || RUN_DIR="$DEFAULT_RUN_DIR"
  export KWOK_WORKDIR="$RUN_DIR/kwok"
  # Without --name: the one cluster of the run directory, whatever `up --name` called it.
  local -a found=("$KWOK_WORKDIR"/clusters/*/)
  if [[ "$NAME_GIVEN" == 0 && ! -d "$KWOK_WORKDIR/clusters/$NAME" && ${#found[@]} -eq 1 && -d "${found[0]}" ]]; then
    NAME="$(basename "${found[0]}")"
  fi
  rm -rf "$RUN_DIR/kubeconfig" "$RUN_DIR/registry" "$RUN_DIR/create.log" "$RUN_DIR/failed-logs"
  if [[ -d "$KWOK_WORKDIR/clusters/$NAME" ]]; then
    cmd_delete 2>/dev/null
    log "cluster $NAME is down"
  else
    log "cluster $NAME is not running (nothing in $KWOK_WORKDIR)"
  fi
}

server_of() { sed -n 's/^ *server: //p' "$1" | head -n1; }

main() {
  local sub="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$sub" in
    -h|--help|help|"") ;;
    *) resolve_bins ;;
  esac
  case "$sub" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    create) cmd_create "$@" ;;
    delete)
      parse_common "$@"
      cmd_delete "${REST[@]}"
      ;;
    status)
      parse_common "$@"
      if is_ready; then echo "cluster $NAME is up: $(server_of "$(kubeconfig_path)")"; else
        echo "cluster $NAME is not up (KWOK_WORKDIR=$KWOK_WORKDIR)"; exit 1
      fi
      ;;
    kubeconfig)
      parse_common "$@"
      [[ -f "$(kubeconfig_path)" ]] || die "no cluster $NAME in $KWOK_WORKDIR"
      kubeconfig_path
      ;;
    config) gen_config ;;
    kubectl)
      parse_common "$@"
      kubectl_ "${REST[@]}"
      ;;
    kwokctl) exec "$(bin kwokctl)" "$@" ;;
    -h|--help|help|"") sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' ;;
    *) die "unknown command $sub (see --help)" ;;
  esac
}

main "$@"
