#!/usr/bin/env bash
# Debian's prometheus (2.42 on Debian 12), for the canary analysis and its tests, installed only
# when /usr/bin/prometheus is missing. Idempotent. The tests run the binary themselves
# (devkit.localstack.prometheus), so the package's own daemon must not start nor be left running.
set -euo pipefail
[[ -x /usr/bin/prometheus ]] && exit 0

SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO=sudo
# Another apt run (make setup installs several packages) may hold the lock: wait for it.
APT=(apt-get -o DPkg::Lock::Timeout=600)

echo "==> installing Prometheus (Debian package, one time)" >&2
$SUDO "${APT[@]}" update -qq

# No init system runs here; a policy-rc.d that answers 101 ("action forbidden") makes the
# package's start of its service a no-op instead of a failed install. One already present (as in
# container images) is left as it is; ours is removed on any exit.
POLICY=/usr/sbin/policy-rc.d
ours_policy=false
if [[ ! -e "$POLICY" ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  ours_policy=true
fi
remove_policy() { if $ours_policy; then $SUDO rm -f "$POLICY"; fi; }
trap remove_policy EXIT

# The package's daemon runs as the prometheus user (its init script); processes that were there
# before the install are not its doing.
daemons() { pgrep -u prometheus -x prometheus 2>/dev/null || true; }
before=" $(daemons | tr '\n' ' ') "
DEBIAN_FRONTEND=noninteractive $SUDO "${APT[@]}" install -y -qq --no-install-recommends \
  prometheus >/dev/null

# Should the package have started its daemon anyway, stop that process (by PID) and nothing else.
for pid in $(daemons); do
  [[ "$before" == *" $pid "* ]] && continue
  echo "==> stopping the prometheus daemon the package started (pid $pid)" >&2
  $SUDO kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    $SUDO kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
done
echo "==> installed $(/usr/bin/prometheus --version 2>&1 | head -n 1)" >&2
