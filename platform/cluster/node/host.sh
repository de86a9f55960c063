# shellcheck shell=bash
# Host network (the bridge, forwarding on the bridge only, the isolation rules) and the kubelet's
# cgroup root: what `up` changes on the machine besides its own files. Sourced by node.sh.

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
