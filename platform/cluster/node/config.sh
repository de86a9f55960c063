# shellcheck shell=bash
# The node's configuration files, rendered from templates/*.tmpl (see render.sh) with the
# settings of node.sh and those cmd_up chose (ports, the registry address, the cluster CA).
# Sourced by node.sh; every writer takes the node's state directory, DIR/node.

NODE_TEMPLATES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/templates"

# render_to FILE TEMPLATE NAME=VALUE...: write templates/TEMPLATE.tmpl, rendered, to FILE.
render_to() {
  local file="$1" template="$2"
  shift 2
  render_template "$NODE_TEMPLATES/$template.tmpl" "$@" > "$file"
}

write_containerd_config() {
  local d="$1"
  render_to "$d/containerd/config.toml" containerd-config.toml NODE_DIR="$d" SOCKET="$SOCKET" \
    PAUSE_IMAGE="$PAUSE_IMAGE" RUNC="$RUNC" CNI_BIN_DIR="${BIN_DIRS[cni]}"
  # Every registry resolves to the local one: a pod never pulls from anywhere else.
  mkdir -p "$d/containerd/certs.d/_default"
  render_to "$d/containerd/certs.d/_default/hosts.toml" containerd-hosts.toml REGISTRY="$REGISTRY"
}

write_cni_config() {
  local d="$1"
  mkdir -p "$d/cni/net.d"
  render_to "$d/cni/net.d/10-flotilla.conflist" cni.conflist NODE_DIR="$d" BRIDGE="$BRIDGE" \
    POD_CIDR="$POD_CIDR" NODE_IP="$NODE_IP"
}

write_kubelet_config() {
  local d="$1"
  render_to "$d/kubelet/config.yaml" kubelet-config.yaml NODE_DIR="$d" NODE_IP="$NODE_IP" \
    KUBELET_PORT="$KUBELET_PORT" KUBELET_HEALTHZ_PORT="$KUBELET_HEALTHZ_PORT" \
    CLIENT_CA="$CLIENT_CA" SOCKET="$SOCKET" CGROUP_ROOT="$CGROUP_ROOT"
  # Pods with dnsPolicy Default get the cluster DNS too: no name lookup leaves the node.
  render_to "$d/kubelet/resolv.conf" kubelet-resolv.conf NODE_IP="$NODE_IP"
}

write_kube_proxy_config() {
  local d="$1"
  render_to "$d/kube-proxy/config.yaml" kube-proxy-config.yaml \
    KUBECONFIG_FILE="$KUBECONFIG_FILE" NODE_NAME="$NODE_NAME" POD_CIDR="$POD_CIDR" \
    PROXY_HEALTHZ_PORT="$PROXY_HEALTHZ_PORT" PROXY_METRICS_PORT="$PROXY_METRICS_PORT"
}

write_corefile() {
  local d="$1"
  render_to "$d/coredns/Corefile" Corefile NODE_IP="$NODE_IP" \
    COREDNS_HEALTH_PORT="$COREDNS_HEALTH_PORT" COREDNS_READY_PORT="$COREDNS_READY_PORT" \
    KUBECONFIG_FILE="$KUBECONFIG_FILE"
}

write_registry_config() {
  local d="$1"
  mkdir -p "$REGISTRY_DATA"
  render_to "$d/registry/config.yml" registry-config.yml REGISTRY_DATA="$REGISTRY_DATA" \
    REGISTRY="$REGISTRY"
}

# Every configuration file of the node's processes (the volumes' manifest is applied later).
write_configs() {
  local d="$1"
  write_registry_config "$d"
  write_containerd_config "$d"
  write_cni_config "$d"
  write_kubelet_config "$d"
  write_kube_proxy_config "$d"
  write_corefile "$d"
}

# The default StorageClass, flotilla-local, and VOLUMES static PersistentVolumes in DIR/node/volumes
# (pv-01, pv-02...), as one manifest on stdout.
volumes_manifest() {
  local d="$1" i
  render_template "$NODE_TEMPLATES/storageclass.yaml.tmpl" || return 1
  for i in $(seq -w 1 "$VOLUMES"); do
    printf -- '---\n'
    render_template "$NODE_TEMPLATES/persistentvolume.yaml.tmpl" NODE_DIR="$d" INDEX="$i" || return 1
  done
}
