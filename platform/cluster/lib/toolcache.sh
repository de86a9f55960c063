# shellcheck shell=bash
# The tool cache, one mechanism for platform/cluster/build-tools.sh (the cluster's Go modules)
# and pipelines/tools.sh (the CI linters), which source it with their name (for error messages):
#   source ".../lib/toolcache.sh" build-tools.sh
#
# Layout: ${FLOTILLA_CACHE:-$HOME/.cache/flotilla}/tools/<name>-<version>-<hash>/bin/<binary>,
# where <hash> (10 hex of a sha256) covers the build recipe the caller prints, so an entry is
# rebuilt only when its recipe changes. An entry is complete when it holds build-info.txt. A
# build goes to a temp dir that is renamed into place, so an interrupted build never leaves a
# half entry; concurrent runs are serialised per name with flock.

TOOLCACHE_SCRIPT="${1:-toolcache.sh}"
TOOLS_CACHE="${FLOTILLA_CACHE:-$HOME/.cache/flotilla}/tools"

# Keep the caller's GOFLAGS (e.g. -mod=readonly); the tools modules sit inside a git checkout,
# so VCS stamping is always disabled. Static binaries: no cgo.
case " ${GOFLAGS:-} " in
  *" -buildvcs=false "*) ;;
  *) export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false" ;;
esac
export CGO_ENABLED=0

log() { printf '%s\n' "$*" >&2; }
die() { log "$TOOLCACHE_SCRIPT: $*"; exit 1; }

# toolcache_key NAME VERSION < recipe: the entry's directory name, <name>-<version>-<hash>.
toolcache_key() {
  local hash
  hash="$(sha256sum | cut -c1-10)"
  echo "$1-$2-$hash"
}

# toolcache_entry KEY: the entry's directory when it is complete; exit status 1 otherwise.
toolcache_entry() {
  local d="$TOOLS_CACHE/$1"
  [[ -f "$d/build-info.txt" ]] && echo "$d"
}

# The build in progress (removed when the script exits before toolcache_commit).
TMP_DIR=""
toolcache_on_exit() {
  if [[ -n "$TMP_DIR" && -d "$TMP_DIR" ]]; then
    rm -rf "$TMP_DIR"
  fi
}
trap toolcache_on_exit EXIT
trap 'exit 130' INT TERM

# toolcache_lock NAME WHAT: wait for any other run on NAME (WHAT: "build", "install").
toolcache_lock() {
  mkdir -p "$TOOLS_CACHE"
  exec {TOOLCACHE_LOCK_FD}>"$TOOLS_CACHE/.$1.lock"
  if ! flock -n "$TOOLCACHE_LOCK_FD"; then
    log "waiting for another $2 of $1 ..."
    flock "$TOOLCACHE_LOCK_FD"
  fi
}

toolcache_unlock() { exec {TOOLCACHE_LOCK_FD}>&-; }

# toolcache_commit DEST: TMP_DIR becomes DEST (a forced rebuild's old entry moved aside first).
toolcache_commit() {
  local dest="$1"
  if [[ "$TMP_DIR" == "$dest" ]]; then
    TMP_DIR=""
    return 0
  fi
  if [[ -e "$dest" ]]; then
    mv "$dest" "$TMP_DIR.old"
    mv "$TMP_DIR" "$dest"
    rm -rf "$TMP_DIR.old"
  else
    mv "$TMP_DIR" "$dest"
  fi
  TMP_DIR=""
}

# toolcache_usage SCRIPT: the script's header comment (up to `set -euo`), as its --help.
toolcache_usage() {
  sed -n '2,/^set -euo/p' "$1" | sed -e '$d' -e 's/^# \{0,1\}//'
}
