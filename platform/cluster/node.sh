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

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

node_dir() { echo "$RUN_DIR/node"; }

# ---------------------------------------------------------------------------------------------
# Configuration files

write_containerd_config() {
  local d="$1"
  cat > "$d/containerd/config.toml" <<EOF
version = 3
root = "$d/containerd/root"
state = "$d/containerd/state"
# Nothing of the machine's /etc/containerd is read.
imports = []

[grpc]
  address = "$SOCKET"

[debug]
  level = "warn"

[metrics]
  address = ""

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "$PAUSE_IMAGE"
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = "$d/containerd/certs.d"

  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    # Pod network namespaces under the state dir, so that down finds and removes them.
    netns_mounts_under_state_dir = true
    # This machine refuses a negative oom_score_adj even to root (the kubelet asks -998 for a
    # sandbox, -997 for Guaranteed pods): clamp to containerd's own score instead.
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = "$RUNC"
          Root = "$d/runc"
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["${BIN_DIRS[cni]}"]
      conf_dir = "$d/cni/net.d"

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

  [plugins.'io.containerd.transfer.v1.local']
    config_path = "$d/containerd/certs.d"

  [plugins.'io.containerd.nri.v1.nri']
    disable = true

  [plugins.'io.containerd.internal.v1.opt']
    path = "$d/containerd/opt"
EOF
  # Every registry resolves to the local one: a pod never pulls from anywhere else.
  mkdir -p "$d/containerd/certs.d/_default"
  cat > "$d/containerd/certs.d/_default/hosts.toml" <<EOF
server = "http://$REGISTRY"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
EOF
}

write_cni_config() {
  local d="$1"
  mkdir -p "$d/cni/net.d"
  cat > "$d/cni/net.d/10-flotilla.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "flotilla",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$d/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

write_kubelet_config() {
  local d="$1"
  cat > "$d/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
readOnlyPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $CLIENT_CA
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$SOCKET
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
cgroupsPerQOS: true
# This machine mounts cgroup v1 controllers beside a cgroup2 mount (a hybrid layout).
failCgroupV1: false
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: $d/kubelet/resolv.conf
podLogsDir: $d/pods-logs
staticPodPath: ""
serializeImagePulls: false
maxPods: 110
podPidsLimit: 4096
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
evictionHard:
  memory.available: 500Mi
  nodefs.available: 2%
  imagefs.available: 2%
protectKernelDefaults: false
makeIPTablesUtilChains: false
registerNode: true
nodeStatusReportFrequency: 10s
shutdownGracePeriod: 0s
EOF
  # Pods with dnsPolicy Default get the cluster DNS too: no name lookup leaves the node.
  printf 'nameserver %s\n' "$NODE_IP" > "$d/kubelet/resolv.conf"
}

write_kube_proxy_config() {
  local d="$1"
  cat > "$d/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $KUBECONFIG_FILE
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
nodePortAddresses: [127.0.0.1/32]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

write_corefile() {
  local d="$1"
  cat > "$d/coredns/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:$COREDNS_HEALTH_PORT
    ready 127.0.0.1:$COREDNS_READY_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_FILE
        pods insecure
    }
    cache 5
}
EOF
}

write_registry_config() {
  local d="$1"
  mkdir -p "$REGISTRY_DATA"
  cat > "$d/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_DATA
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
}

# ---------------------------------------------------------------------------------------------
# Host network: bridge, forwarding on the bridge only, isolation rules

setup_network() {
  local d="$1"
  # The bridge's MAC address is pinned. Unpinned, a bridge takes the lowest MAC of its ports, so
  # it changes as pods come and go; pods keep the old one cached for their gateway (every Service
  # and DNS packet goes through it) and lose packets until that ARP entry expires: seconds of
  # timeouts in the middle of a rollout. (The CNI bridge plugin pins it only when it assigns the
  # bridge's address itself, and here this script does.)
  local mac
  # shellcheck disable=SC2086 # the address's four octets, split on purpose
  mac=$(printf '02:00:%02x:%02x:%02x:%02x' ${NODE_IP//./ })
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" address "$mac" type bridge
  else
    ip link set "$BRIDGE" address "$mac"
  fi
  ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  modprobe br_netfilter 2>/dev/null || true
  # Remember the sysctls this changes, to restore them on down.
  local key
  : > "$d/sysctl.saved"
  for key in net.bridge.bridge-nf-call-iptables net.ipv4.conf.all.route_localnet; do
    echo "$key=$(sysctl -n "$key")" >> "$d/sysctl.saved"
  done
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  sysctl -qw "net.ipv4.conf.$BRIDGE.forwarding=1"
  sysctl -qw "net.ipv6.conf.$BRIDGE.disable_ipv6=1"

  iptables -w -N "$CHAIN" 2>/dev/null || iptables -w -F "$CHAIN"
  iptables -w -A "$CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  iptables -w -A "$CHAIN" -i "$BRIDGE" -j DROP -m comment --comment "flotilla: pods never leave the node"
  iptables -w -A "$CHAIN" -o "$BRIDGE" -j DROP -m comment --comment "flotilla: nothing routed to pods from outside"
  iptables -w -C FORWARD -j "$CHAIN" 2>/dev/null || iptables -w -I FORWARD 1 -j "$CHAIN"
  # From a pod, the host answers only DNS (CoreDNS on the bridge address) and replies.
  iptables -w -N "$CHAIN-IN" 2>/dev/null || iptables -w -F "$CHAIN-IN"
  iptables -w -A "$CHAIN-IN" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  iptables -w -A "$CHAIN-IN" -d "$NODE_IP" -p udp --dport 53 -j ACCEPT
  iptables -w -A "$CHAIN-IN" -d "$NODE_IP" -p tcp --dport 53 -j ACCEPT
  iptables -w -A "$CHAIN-IN" -j DROP -m comment --comment "flotilla: pods reach only DNS on the node"
  iptables -w -C INPUT -i "$BRIDGE" -j "$CHAIN-IN" 2>/dev/null || iptables -w -I INPUT 1 -i "$BRIDGE" -j "$CHAIN-IN"
}

# The kubelet's cgroup root in every cgroup v1 hierarchy (cpuset's needs its parent's cpus/mems).
create_cgroup_root() {
  local ctrl
  for ctrl in /sys/fs/cgroup/*/; do
    [[ "$ctrl" == */unified/ ]] && continue
    mkdir -p "$ctrl$CGROUP_ROOT"
    if [[ -f "$ctrl$CGROUP_ROOT/cpuset.cpus" ]]; then
      cat "${ctrl}cpuset.cpus" > "$ctrl$CGROUP_ROOT/cpuset.cpus"
      cat "${ctrl}cpuset.mems" > "$ctrl$CGROUP_ROOT/cpuset.mems"
    fi
  done
}

# ---------------------------------------------------------------------------------------------
# Processes

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

  write_registry_config "$d"
  write_containerd_config "$d"
  write_cni_config "$d"
  write_kubelet_config "$d"
  write_kube_proxy_config "$d"
  write_corefile "$d"
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
  local d="$1" i manifest
  manifest="apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: flotilla-local
  annotations:
    storageclass.kubernetes.io/is-default-class: \"true\"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
"
  for i in $(seq -w 1 "$VOLUMES"); do
    install -d -o 10001 -g 10001 -m 0775 "$d/volumes/pv-$i"
    manifest+="---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: flotilla-local-$i
  labels:
    flotilla.dev/volume: local
spec:
  capacity:
    storage: 10Gi
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: flotilla-local
  hostPath:
    path: $d/volumes/pv-$i
    type: Directory
"
  done
  printf '%s' "$manifest" | kubectl_ apply -f - >/dev/null || die "could not create the local volumes"
}

# Whether any process of the node whose state is in $1 still runs.
node_alive() {
  local p
  for p in "$1"/pids/*.pid; do
    kill -0 "$(cat "$p")" 2>/dev/null && return 0
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# Teardown: everything up made, also after a kill -9 of the whole stack

pids_of_node() {
  local d="$1" p
  for p in "$d"/pids/*.pid; do cat "$p"; done
  # containerd's shims outlive it; they name its socket on their command line.
  pgrep -f -- "containerd-shim-runc-v2 .*-address $SOCKET" || true
}

kill_cgroup_tree() {
  local ctrl dir pid
  for ctrl in /sys/fs/cgroup/*/; do
    dir="$ctrl$CGROUP_ROOT"
    [[ -d "$dir" ]] || continue
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < <(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done
}

remove_cgroup_tree() {
  local ctrl dir
  for ctrl in /sys/fs/cgroup/*/; do
    dir="$ctrl$CGROUP_ROOT"
    [[ -d "$dir" ]] || continue
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

unmount_under() {
  local prefix="$1" m
  # Deepest first; lazily, since a dying container may still hold one for a moment.
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
    awk -v p="$prefix" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
  )
}

# Drop every rule that jumps to a chain named PREFIX*, then those chains, in every table.
remove_chains() {
  local cmd="$1" prefix="$2" table rule chain
  for table in filter nat mangle; do
    while read -r rule; do
      # shellcheck disable=SC2086
      eval "$cmd -w -t $table -D ${rule#-A }" 2>/dev/null || true
    done < <("$cmd" -w -t "$table" -S 2>/dev/null | grep -E "^-A .* -j $prefix" || true)
    while read -r chain; do
      "$cmd" -w -t "$table" -F "$chain" 2>/dev/null || true
    done < <("$cmd" -w -t "$table" -S 2>/dev/null | awk -v p="$prefix" '$1 == "-N" && index($2, p) == 1 { print $2 }')
    while read -r chain; do
      "$cmd" -w -t "$table" -X "$chain" 2>/dev/null || true
    done < <("$cmd" -w -t "$table" -S 2>/dev/null | awk -v p="$prefix" '$1 == "-N" && index($2, p) == 1 { print $2 }')
  done
}

remove_iptables() {
  local kube_proxy="${BIN_DIRS[kube]:-}/kube-proxy"
  if [[ -x "$kube_proxy" ]]; then "$kube_proxy" --cleanup >/dev/null 2>&1 || true; fi
  local cmd
  # What kube-proxy's cleanup leaves (KUBE-FIREWALL), the kubelet's canaries, the portmap
  # plugin's chains (CNI-*) and ours: only this node makes such chains on the machine.
  for cmd in iptables ip6tables; do
    remove_chains "$cmd" FLOTILLA-
    remove_chains "$cmd" KUBE-
    remove_chains "$cmd" CNI-
  done
}

cleanup_node() {
  local d="$1" quiet="${2:-}" pid
  # 1. Processes: the node's own, then every container (by its cgroup).
  while read -r pid; do
    [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true
  done < <(pids_of_node "$d")
  kill_cgroup_tree
  if [[ -d "$d/runc" ]]; then
    local ns id
    for ns in "$d"/runc/*/; do
      while read -r id; do
        "$RUNC" --root "$ns" delete --force "$id" >/dev/null 2>&1 || true
      done < <("$RUNC" --root "$ns" list -q 2>/dev/null || true)
    done
  fi
  sleep 0.2
  kill_cgroup_tree
  # 2. Mounts (overlay rootfs, tmpfs volumes, shm, network namespaces), then files.
  unmount_under "$d"
  unmount_under "$KUBELET_ROOT"
  remove_cgroup_tree
  # 3. Network: pod veths go with their namespaces; the bridge, rules and sysctls are ours.
  local link
  while read -r link; do ip link del "$link" 2>/dev/null || true; done < <(
    ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1
  )
  ip link del "$BRIDGE" 2>/dev/null || true
  remove_iptables
  if [[ -f "$d/sysctl.saved" ]]; then
    local kv
    while read -r kv; do sysctl -qw "$kv" 2>/dev/null || true; done < "$d/sysctl.saved"
  fi
  rm -rf "$d" "$SOCKET_DIR" "$(dirname "$KUBELET_ROOT")"
  rm -f "$(dirname "$d")/registry"
  [[ -n "$quiet" ]] || log "real node stopped; bridge, rules, mounts and processes removed"
}

cmd_down() {
  resolve_bins 2>/dev/null || true
  local d
  d="$(node_dir)"
  if [[ ! -d "$d" ]] && ! ip link show "$BRIDGE" >/dev/null 2>&1 && [[ ! -e "$SOCKET_DIR" && ! -e "$(dirname "$KUBELET_ROOT")" ]]; then
    log "no real node in $RUN_DIR"
    return 0
  fi
  exec {NODE_LOCK_FD}>>"$LOCK"
  flock "$NODE_LOCK_FD"
  cleanup_node "$d"
  if [[ "$(cat "$OWNER" 2>/dev/null)" == "$RUN_DIR" ]]; then rm -f "$OWNER"; fi
  exec {NODE_LOCK_FD}>&-
}

cmd_status() {
  local d p alive=0 dead=0
  d="$(node_dir)"
  [[ -d "$d/pids" ]] || { echo "no real node in $RUN_DIR"; return 1; }
  for p in "$d"/pids/*.pid; do
    if kill -0 "$(cat "$p")" 2>/dev/null; then alive=$((alive + 1)); else
      echo "$(basename "$p" .pid) is not running"; dead=$((dead + 1)); fi
  done
  [[ $dead -eq 0 && $alive -gt 0 ]]
}

# What a node leaves on the machine, one line each; nothing when it is clean.
cmd_leftovers() {
  local found=0 line
  report() { echo "$1"; found=1; }
  ip link show "$BRIDGE" >/dev/null 2>&1 && report "link: bridge $BRIDGE"
  while read -r line; do report "link: veth $line"; done < <(
    ip -o link show type veth 2>/dev/null | awk -F': ' '{ print $2 }' | grep -E '^veth' || true
  )
  while read -r line; do report "netns: $line"; done < <(ip netns list 2>/dev/null | grep -E '^cni-' || true)
  while read -r line; do report "iptables: $line"; done < <(
    for t in filter nat mangle; do iptables -w -t "$t" -S 2>/dev/null; ip6tables -w -t "$t" -S 2>/dev/null; done \
      | grep -E 'FLOTILLA|KUBE-|CNI-|198\.19\.128\.' || true
  )
  while read -r line; do report "mount: $line"; done < <(
    awk '$5 ~ /\/node\/(containerd|runc)/ || $5 ~ /flotilla-node/ || $5 ~ /netns\/cni-/ { print $5 }' /proc/self/mountinfo
  )
  while read -r line; do report "process: $line"; done < <(
    pgrep -a -f -- "-address $SOCKET"'|/node/containerd/config\.toml|/node/kubelet/config\.yaml|/node/kube-proxy/config\.yaml|/node/coredns/Corefile|/node/registry/config\.yml' || true
  )
  local ctrl
  for ctrl in /sys/fs/cgroup/*/; do
    [[ -d "$ctrl$CGROUP_ROOT" ]] && report "cgroup: $ctrl$CGROUP_ROOT"
  done
  [[ -e "$SOCKET_DIR" ]] && report "file: $SOCKET_DIR"
  [[ -e "$(dirname "$KUBELET_ROOT")" ]] && report "file: $(dirname "$KUBELET_ROOT")"
  [[ "$(sysctl -n net.ipv4.conf.all.route_localnet)" == 1 ]] && report "sysctl: net.ipv4.conf.all.route_localnet=1"
  return $found
}

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
