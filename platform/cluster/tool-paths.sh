#!/usr/bin/env bash
# Print the PATH setup for the built control plane tools.
#
#   eval "$(platform/cluster/tool-paths.sh)"        # export PATH=... (built tools only)
#   platform/cluster/tool-paths.sh --dirs           # one bin dir per line
#   platform/cluster/tool-paths.sh [component ...]  # restrict to components
#
# Tools that are not built yet are skipped with a warning on stderr; build
# them with platform/cluster/build-tools.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ "${1:-}" == "--dirs" ]]; then
  shift
  comps=("$@")
  [[ ${#comps[@]} -gt 0 ]] || comps=(helm kube etcd kwok)
  for c in "${comps[@]}"; do
    "$here/build-tools.sh" --bin-dir "$c" 2>/dev/null || echo "warning: $c not built" >&2
  done
  exit 0
fi
exec "$here/build-tools.sh" --print-path "$@"
