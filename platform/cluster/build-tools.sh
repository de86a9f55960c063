#!/usr/bin/env bash
# Build the local control plane tools (helm, kube, etcd, kwok), the real
# node's runtime (containerd, CNI plugins, CoreDNS) and the Flux controllers
# from pinned Go modules into a cache directory outside the checkout.
#
#   build-tools.sh [--force] [component ...]   build (default: all, helm first)
#   build-tools.sh --path BINARY               absolute path of one built binary
#   build-tools.sh --bin-dir COMPONENT         bin dir of one component
#   build-tools.sh --crd-dir COMPONENT         dir of the CRDs built with it (flux)
#   build-tools.sh --print-path                `export PATH=...` line (built tools)
#   build-tools.sh --list                      components, versions, dirs, state
#   build-tools.sh --prune                     delete cache entries other than the current ones
#   build-tools.sh --help
#
# Components and binaries:
#   helm  helm
#   kube  kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy
#   etcd  etcd
#   kwok  kwok kwokctl
#   containerd  containerd containerd-shim-runc-v2 ctr
#   cni   bridge host-local loopback portmap
#   coredns  coredns
#   flux  source-controller kustomize-controller helm-controller (+ crds/)
#
# Versions come from versions.env; the Go modules pinning them (and their
# go.sum) live in tools/<component>/. The cache (lib/toolcache.sh, shared with
# pipelines/tools.sh) is
#   ${FLOTILLA_CACHE:-$HOME/.cache/flotilla}/tools/<component>-<version>-<hash>/bin/<binary>
# where <hash> covers the tools module's go.mod + go.sum, the build recipe
# (ldflags, tags) and the Go version, so an entry is rebuilt only when one of
# those changes. A build goes to a temp dir that is renamed into place when
# complete, so an interrupted build never leaves a half entry. Concurrent
# invocations are serialised per component with flock. A component with CRDs
# (flux) also gets <entry>/crds/*.yaml, copied from its modules' config/crd/bases.
#
# Exit codes: 0 ok, 1 build/lookup failure, 2 usage error.
set -euo pipefail
shopt -s inherit_errexit

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/versions.env
source "$CLUSTER_DIR/versions.env"

# shellcheck source=SCRIPTDIR/lib/toolcache.sh
source "$CLUSTER_DIR/lib/toolcache.sh" build-tools.sh
ALL_COMPONENTS=(helm kube etcd kwok containerd cni coredns flux)

component_version() {
  case "$1" in
    helm) echo "$HELM_VERSION" ;;
    kube) echo "$KUBE_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    containerd) echo "$CONTAINERD_VERSION" ;;
    cni) echo "$CNI_PLUGINS_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    flux)
      echo "sc${FLUX_SOURCE_CONTROLLER_VERSION#v}-kc${FLUX_KUSTOMIZE_CONTROLLER_VERSION#v}-hc${FLUX_HELM_CONTROLLER_VERSION#v}"
      ;;
    *) return 1 ;;
  esac
}

# "module version" lines: the modules each tools module requires at the versions.env pin
# (check_module_pin checks its go.mod).
component_pins() {
  local v
  v="$(component_version "$1")"
  case "$1" in
    helm) echo "helm.sh/helm/v4 $v" ;;
    kube) echo "k8s.io/kubernetes $v" ;;
    etcd) echo "go.etcd.io/etcd/server/v3 $v" ;;
    kwok) echo "sigs.k8s.io/kwok $v" ;;
    containerd) echo "github.com/containerd/containerd/v2 $v" ;;
    cni) echo "github.com/containernetworking/plugins $v" ;;
    coredns) echo "github.com/coredns/coredns $v" ;;
    flux)
      # Each controller and its API module, at the same version.
      local m
      for m in source:"$FLUX_SOURCE_CONTROLLER_VERSION" kustomize:"$FLUX_KUSTOMIZE_CONTROLLER_VERSION" \
               helm:"$FLUX_HELM_CONTROLLER_VERSION"; do
        echo "github.com/fluxcd/${m%%:*}-controller ${m#*:}"
        echo "github.com/fluxcd/${m%%:*}-controller/api ${m#*:}"
      done
      ;;
  esac
}

# The modules whose config/crd/bases/*.yaml go to the entry's crds/ (none for most).
component_crd_modules() {
  case "$1" in
    flux)
      echo "github.com/fluxcd/source-controller"
      echo "github.com/fluxcd/kustomize-controller"
      echo "github.com/fluxcd/helm-controller"
      ;;
  esac
}

# "binary package" lines, in build order.
component_targets() {
  case "$1" in
    helm) echo "helm helm.sh/helm/v4/cmd/helm" ;;
    kube)
      echo "kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver"
      echo "kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager"
      echo "kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler"
      echo "kubectl k8s.io/kubernetes/cmd/kubectl"
      echo "kubelet k8s.io/kubernetes/cmd/kubelet"
      echo "kube-proxy k8s.io/kubernetes/cmd/kube-proxy"
      ;;
    etcd) echo "etcd go.etcd.io/etcd/server/v3" ;;
    kwok)
      echo "kwok sigs.k8s.io/kwok/cmd/kwok"
      echo "kwokctl sigs.k8s.io/kwok/cmd/kwokctl"
      ;;
    containerd)
      echo "containerd github.com/containerd/containerd/v2/cmd/containerd"
      echo "containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
      echo "ctr github.com/containerd/containerd/v2/cmd/ctr"
      ;;
    cni)
      echo "bridge github.com/containernetworking/plugins/plugins/main/bridge"
      echo "host-local github.com/containernetworking/plugins/plugins/ipam/host-local"
      echo "loopback github.com/containernetworking/plugins/plugins/main/loopback"
      echo "portmap github.com/containernetworking/plugins/plugins/meta/portmap"
      ;;
    coredns) echo "coredns github.com/coredns/coredns" ;;
    flux)
      # go install refuses these modules (their go.mod has replace directives); the tools
      # module requires them and repeats the replace directives that matter.
      echo "source-controller github.com/fluxcd/source-controller"
      echo "kustomize-controller github.com/fluxcd/kustomize-controller"
      echo "helm-controller github.com/fluxcd/helm-controller"
      ;;
  esac
}

binary_component() {
  local c
  for c in "${ALL_COMPONENTS[@]}"; do
    if component_targets "$c" | awk '{print $1}' | grep -qx -- "$1"; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

# Release date of a module version per the module proxy's .info (used as a
# reproducible buildDate for the Kubernetes binaries).
module_time() {
  local info t
  info="$(cd "$CLUSTER_DIR/tools/$1" && go mod download -json "$2@$3")" || return 1
  t="$(printf '%s' "$info" | python3 -c 'import json,sys; print(json.load(open(json.load(sys.stdin)["Info"])).get("Time",""))')" || return 1
  [[ -n "$t" ]] || { log "no release time for $2@$3"; return 1; }
  echo "$t"
}

# Build recipe: "-tags ... -ldflags ..." arguments, one per line.
component_build_args() {
  local c="$1" v
  v="$(component_version "$c")"
  case "$c" in
    helm)
      echo "-ldflags=-s -w -X helm.sh/helm/v4/internal/version.version=$v -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
      ;;
    kube)
      # Same tags as the upstream release build (hack/lib/golang.sh).
      local major minor date ld="-s -w" pkg
      major="${v#v}"; major="${major%%.*}"
      minor="${v#v*.}"; minor="${minor%%.*}"
      date="$(module_time kube k8s.io/kubernetes "$v")" || die "cannot resolve release date of k8s.io/kubernetes@$v"
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        ld+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit= -X $pkg.buildDate=$date"
      done
      echo "-tags=selinux,notest,grpcnotrace"
      echo "-ldflags=$ld"
      ;;
    etcd)
      echo "-ldflags=-s -w"
      ;;
    kwok)
      # Default kwokctl's --kube-version to the Kubernetes we build.
      echo "-ldflags=-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$v -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBE_VERSION"
      ;;
    containerd)
      # Static (CGO off): without the snapshotters that need cgo or kernel features unused here.
      echo "-tags=no_btrfs,no_devmapper,no_zfs"
      echo "-ldflags=-s -w -X github.com/containerd/containerd/v2/version.Version=$v -X github.com/containerd/containerd/v2/version.Revision=module"
      ;;
    cni)
      echo "-ldflags=-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$v"
      ;;
    coredns|flux)
      echo "-ldflags=-s -w"
      ;;
  esac
}

check_module_pin() {
  local c="$1" mod v gomod
  gomod="$CLUSTER_DIR/tools/$c/go.mod"
  [[ -f "$gomod" ]] || die "missing $gomod"
  while read -r mod v; do
    grep -Eq "^(require)?[[:space:]]*${mod//./\\.}[[:space:]]+${v//./\\.}([[:space:]]|$)" "$gomod" \
      || die "tools/$c/go.mod does not require $mod $v (versions.env says $v); update go.mod (tools/kube: ./update-go-mod.sh; others: go get $mod@$v && go mod tidy)"
  done < <(component_pins "$c")
}

# Copy the CRDs of the component's modules (at the versions go.mod resolves) into DEST/crds.
copy_crds() {
  local c="$1" dest="$2" mod dir n=0 f
  while read -r mod; do
    dir="$(cd "$CLUSTER_DIR/tools/$c" && go list -m -f '{{.Dir}}' "$mod")" || die "go list -m $mod failed"
    [[ -n "$dir" && -d "$dir/config/crd/bases" ]] || die "no config/crd/bases in $mod ($dir)"
    mkdir -p "$dest/crds"
    for f in "$dir"/config/crd/bases/*.yaml; do
      install -m 0644 "$f" "$dest/crds/"
      n=$((n + 1))
    done
  done < <(component_crd_modules "$c")
  if [[ $n -gt 0 ]]; then log "$c: $n CRDs -> crds/"; fi
}

# Cache key: version + hash of go.mod/go.sum, build recipe, Go version.
component_key() {
  local c="$1"
  {
    cat "$CLUSTER_DIR/tools/$c/go.mod" "$CLUSTER_DIR/tools/$c/go.sum"
    component_targets "$c"
    component_build_args "$c"
    go env GOVERSION GOOS GOARCH CGO_ENABLED
    echo "-trimpath"
  } | toolcache_key "$c" "$(component_version "$c")"
}

# Bin dir of the complete cache entry for the current pin + recipe, if any.
find_built_dir() {
  local d
  d="$(toolcache_entry "$(component_key "$1")")" && echo "$d/bin"
}

cleanup_stale_tmp() {
  local d pid
  for d in "$TOOLS_CACHE"/.*.tmp.*; do
    [[ -d "$d" ]] || continue
    pid="${d##*.}"
    # Still owned by a live (non-zombie) build-tools.sh? Then leave it.
    if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'build-tools\.sh' \
       && ! awk '{exit !($3 == "Z")}' "/proc/$pid/stat" 2>/dev/null; then
      continue
    fi
    rm -rf "$d"
  done
}

build_component() {
  local c="$1" force="$2" v key dest
  v="$(component_version "$c")" || die "unknown component: $c"
  check_module_pin "$c"
  key="$(component_key "$c")"
  dest="$TOOLS_CACHE/$key"
  toolcache_lock "$c" build

  if [[ -f "$dest/build-info.txt" && "$force" != 1 ]]; then
    log "$c ${v#v}: up to date ($dest/bin)"
    toolcache_unlock
    return 0
  fi

  cleanup_stale_tmp
  TMP_DIR="$TOOLS_CACHE/.$key.tmp.$$"
  rm -rf "$TMP_DIR"
  mkdir -p "$TMP_DIR/bin"

  local -a args=()
  local line
  while IFS= read -r line; do args+=("$line"); done < <(component_build_args "$c")

  local name pkg start t total_start info
  total_start=$(date +%s)
  info="component=$c
version=$v
key=$key
go=$(go env GOVERSION)
built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
build_args=${args[*]}
"
  while read -r name pkg; do
    start=$(date +%s)
    printf 'building %s %s (%s)... ' "$c" "${v#v}" "$name" >&2
    if ! (cd "$CLUSTER_DIR/tools/$c" && nice -n "${BUILD_NICE:-15}" go build -trimpath "${args[@]}" -o "$TMP_DIR/bin/$name" "$pkg"); then
      log "FAILED"
      die "build of $name ($pkg) failed"
    fi
    t=$(( $(date +%s) - start ))
    log "done in $t s"
    info+="seconds_$name=$t
"
  done < <(component_targets "$c")
  copy_crds "$c" "$TMP_DIR"
  info+="seconds_total=$(( $(date +%s) - total_start ))
"
  printf '%s' "$info" > "$TMP_DIR/build-info.txt"

  toolcache_commit "$dest"
  log "$c ${v#v}: built in $(( $(date +%s) - total_start )) s -> $dest/bin"
  toolcache_unlock
}

usage() { toolcache_usage "${BASH_SOURCE[0]}"; }

main() {
  local force=0 mode=build c d
  local -a comps=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h|--help) usage; return 0 ;;
      --force) force=1 ;;
      --path)
        [[ $# -ge 2 ]] || { log "--path needs a binary name"; return 2; }
        c="$(binary_component "$2")" || { log "unknown binary: $2"; return 2; }
        d="$(find_built_dir "$c")" || die "$c $(component_version "$c") is not built; run: $0 $c"
        echo "$d/$2"
        return 0
        ;;
      --bin-dir)
        [[ $# -ge 2 ]] || { log "--bin-dir needs a component"; return 2; }
        component_version "$2" >/dev/null || { log "unknown component: $2"; return 2; }
        d="$(find_built_dir "$2")" || die "$2 $(component_version "$2") is not built; run: $0 $2"
        echo "$d"
        return 0
        ;;
      --crd-dir)
        [[ $# -ge 2 ]] || { log "--crd-dir needs a component"; return 2; }
        component_version "$2" >/dev/null || { log "unknown component: $2"; return 2; }
        [[ -n "$(component_crd_modules "$2")" ]] || { log "$2 has no CRDs"; return 2; }
        d="$(find_built_dir "$2")" || die "$2 $(component_version "$2") is not built; run: $0 $2"
        echo "${d%/bin}/crds"
        return 0
        ;;
      --print-path) mode=print-path ;;
      --list) mode=list ;;
      --prune) mode=prune ;;
      -*) log "unknown option: $1"; usage >&2; return 2 ;;
      *)
        component_version "$1" >/dev/null || { log "unknown component: $1 (one of: ${ALL_COMPONENTS[*]})"; return 2; }
        comps+=("$1")
        ;;
    esac
    shift
  done
  [[ ${#comps[@]} -gt 0 ]] || comps=("${ALL_COMPONENTS[@]}")

  case "$mode" in
    print-path)
      local p=""
      for c in "${comps[@]}"; do
        if d="$(find_built_dir "$c")"; then p+="$d:"; else log "warning: $c not built"; fi
      done
      echo "export PATH=\"${p}\$PATH\""
      ;;
    list)
      for c in "${comps[@]}"; do
        if d="$(find_built_dir "$c")"; then
          printf '%-5s %-9s built    %s\n' "$c" "$(component_version "$c")" "$d"
        else
          printf '%-5s %-9s missing\n' "$c" "$(component_version "$c")"
        fi
      done
      ;;
    prune)
      local keep="" e
      for c in "${ALL_COMPONENTS[@]}"; do keep+=" $(component_key "$c") "; done
      for e in "$TOOLS_CACHE"/*/; do
        e="$(basename "$e")"
        [[ -d "$TOOLS_CACHE/$e" ]] || continue
        if [[ "$keep" != *" $e "* ]]; then
          log "removing $TOOLS_CACHE/$e"
          rm -rf "${TOOLS_CACHE:?}/$e"
        fi
      done
      ;;
    build)
      command -v go >/dev/null || die "go not found in PATH"
      local start
      start=$(date +%s)
      for c in "${comps[@]}"; do build_component "$c" "$force"; done
      log "all done in $(( $(date +%s) - start )) s"
      ;;
  esac
}

main "$@"
