# shellcheck shell=bash
# Teardown (`down`, and `up` after a crash): everything up made, also after a kill -9 of the
# whole stack. Sourced by node.sh.

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
