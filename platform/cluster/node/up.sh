# shellcheck shell=bash
# `up`: the node's processes (registry, containerd, CoreDNS, kube-proxy, kubelet) started,
# waited for, and given their volumes. Sourced by node.sh.

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_proc() {
  local d="$1" name="$2"
  shift 2
  # Detached in its own session, without the lock's fd.
  setsid "$@" >> "$d/logs/$name.log" 2>&1 < /dev/null {NODE_LOCK_FD}>&- &
  echo $! > "$d/pids/$name.pid"
}

wait_for() {
  local what="$1" timeout="$2"
  shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    [[ $(date +%s) -lt $deadline ]] || return 1
    sleep 0.2
  done
  log "$what ready"
}

http_ok() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"; }

kubectl_() { "${BIN_DIRS[kube]}/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

node_ready() {
  [[ "$(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

client_ca_of() {
  # The cluster CA that signed the admin's client certificate: the kubelet trusts it for
  # the API server's calls (logs, exec, port-forward).
  local dir
  dir="$(dirname "$KUBECONFIG_FILE")"
  for f in "$dir/pki/ca.crt" "$dir/../pki/ca.crt"; do
    [[ -f "$f" ]] && { echo "$(cd "$(dirname "$f")" && pwd)/ca.crt"; return 0; }
  done
  return 1
}

# Checked alone, this file neither sets node.sh's settings (OWNER, KUBELET_ROOT) nor reads the
# ports and CA it picks for the writers of config.sh.
# shellcheck disable=SC2034,SC2153
cmd_up() {
  [[ -f "$KUBECONFIG_FILE" ]] || die "up: no kubeconfig $KUBECONFIG_FILE (start the control plane first)"
  command -v "$RUNC" >/dev/null || die "runc not found at $RUNC: run $CLUSTER_DIR/node-deps.sh (or make cluster-tools)"
  command -v iptables >/dev/null || die "iptables not found: run $CLUSTER_DIR/node-deps.sh"
  command -v docker-registry >/dev/null || die "docker-registry not found: run $CLUSTER_DIR/node-deps.sh"
  [[ "$(id -u)" == 0 ]] || die "the real node needs root (bridges, iptables, mounts, cgroups); use --no-real-node for kwok nodes only"
  resolve_bins
  local d
  d="$(node_dir)"
  mkdir -p "$CACHE_ROOT"
  exec {NODE_LOCK_FD}>>"$LOCK"
  flock "$NODE_LOCK_FD"
  local owner
  owner="$(cat "$OWNER" 2>/dev/null || true)"
  if [[ -n "$owner" ]] && node_alive "$owner/node"; then
    die "a real node already runs on this machine, for the cluster in $owner; stop it first ($CLUSTER_DIR/cluster.sh down --run-dir $owner), or start this cluster without one (--no-real-node)"
  fi
  # Whatever a crashed node left (processes, containers, mounts, rules) goes first.
  if [[ -n "$owner" && "$owner" != "$RUN_DIR" ]]; then cleanup_node "$owner/node" quiet; fi
  cleanup_node "$d" quiet
  echo "$RUN_DIR" > "$OWNER"
  mkdir -p "$d"/{logs,pids,containerd,kubelet,kube-proxy,coredns,registry,pods-logs,runc} "$SOCKET_DIR"
  CLIENT_CA="$(client_ca_of)" || die "cannot find the cluster CA next to $KUBECONFIG_FILE"
  KUBELET_PORT=$(free_port); KUBELET_HEALTHZ_PORT=$(free_port)
  PROXY_HEALTHZ_PORT=$(free_port); PROXY_METRICS_PORT=$(free_port)
  COREDNS_HEALTH_PORT=$(free_port); COREDNS_READY_PORT=$(free_port)
  REGISTRY="127.0.0.1:$(free_port)"
  echo "$REGISTRY" > "$d/registry.address"
  echo "$REGISTRY" > "$RUN_DIR/registry"

  write_configs "$d"
  setup_network "$d"
  create_cgroup_root

  export PATH="${BIN_DIRS[containerd]}:$PATH"
  start_proc "$d" registry docker-registry serve "$d/registry/config.yml"
  start_proc "$d" containerd "${BIN_DIRS[containerd]}/containerd" --config "$d/containerd/config.toml"
  start_proc "$d" coredns "${BIN_DIRS[coredns]}/coredns" -conf "$d/coredns/Corefile"
  start_proc "$d" kube-proxy "${BIN_DIRS[kube]}/kube-proxy" --config "$d/kube-proxy/config.yaml"
  wait_for "registry" 20 http_ok "http://$REGISTRY/v2/" || die "the registry did not start (log: $d/logs/registry.log)"
  wait_for "containerd" 30 test -S "$SOCKET" || die "containerd did not start (log: $d/logs/containerd.log)"
  start_proc "$d" kubelet "${BIN_DIRS[kube]}/kubelet" \
    --config "$d/kubelet/config.yaml" --kubeconfig "$KUBECONFIG_FILE" \
    --root-dir "$KUBELET_ROOT" --cert-dir "$KUBELET_ROOT/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "flotilla.dev/node=real"
  wait_for "node $NODE_NAME" 90 node_ready || die "node $NODE_NAME did not become Ready (logs: $d/logs/kubelet.log, containerd.log)"
  wait_for "CoreDNS" 30 http_ok "http://127.0.0.1:$COREDNS_READY_PORT/ready" || die "CoreDNS is not ready (log: $d/logs/coredns.log)"
  create_volumes "$d"
  exec {NODE_LOCK_FD}>&-
  log "real node $NODE_NAME is up: pods on $BRIDGE ($POD_CIDR), registry $REGISTRY"
}

# The default StorageClass, flotilla-local, with static volumes in DIR/node/volumes: they keep a
# pod's data across restarts and rollouts, and go with the cluster (down deletes them). Their
# directories belong to uid/gid 10001, the numeric user of every image of the project.
create_volumes() {
  local d="$1" i
  for i in $(seq -w 1 "$VOLUMES"); do
    install -d -o 10001 -g 10001 -m 0775 "$d/volumes/pv-$i"
  done
  volumes_manifest "$d" | kubectl_ apply -f - >/dev/null || die "could not create the local volumes"
}

# Whether any process of the node whose state is in $1 still runs.
node_alive() {
  local p
  for p in "$1"/pids/*.pid; do
    kill -0 "$(cat "$p")" 2>/dev/null && return 0
  done
  return 1
}
