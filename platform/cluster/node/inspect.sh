# shellcheck shell=bash
# `status` and `leftovers`: what runs, and what a node left on the machine. Sourced by node.sh.

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
