#!/usr/bin/env bash
# Install Debian packages whose binaries are missing (idempotent; says what it installs).
#
#   debian-packages.sh WHAT BINARY=PACKAGE...
#
# WHAT names the purpose in the messages. A binary counts as present when it is on PATH or in
# /usr/sbin (root's tools, not on every user's PATH).
set -euo pipefail
what="$1"
shift
missing=()
for pair in "$@"; do
  binary="${pair%%=*}"
  if ! command -v "$binary" >/dev/null 2>&1 && ! [[ -x "/usr/sbin/$binary" ]]; then
    missing+=("${pair#*=}")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO=sudo
echo "==> installing Debian packages for $what: ${missing[*]} (one time)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "==> installed ${missing[*]}" >&2
