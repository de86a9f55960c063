#!/usr/bin/env bash
# Re-vendor the flotilla-lib library into every application chart (charts/<chart>/charts/*.tgz)
# with the pinned helm, after any change under charts/flotilla-lib. Offline: the dependency is a
# file:// path, so no repository index is read. The chart tests fail while a vendored copy is stale.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
helm="$("$here/../platform/cluster/build-tools.sh" --path helm)"
# Every chart that depends on the library (its Chart.yaml names it under dependencies), found
# from the folders: a chart added by make new-service is vendored without editing this script.
for chart_yaml in "$here"/*/Chart.yaml; do
  grep -qE '^\s*repository:\s*"?file://\.\./flotilla-lib"?\s*$' "$chart_yaml" || continue
  chart="$(basename "$(dirname "$chart_yaml")")"
  # "build" follows Chart.lock; "update" rewrites it (needed after a dependency version change).
  "$helm" dependency build --skip-refresh "$here/$chart" >/dev/null 2>&1 \
    || "$helm" dependency update --skip-refresh "$here/$chart" >/dev/null
  echo "vendored flotilla-lib into charts/$chart"
done
