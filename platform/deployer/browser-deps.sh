#!/usr/bin/env bash
# Debian's chromium, for the dashboard's browser test (tests/deployer/test_dashboard_browser.py),
# installed only when it is not on PATH. Idempotent. (Its fontconfig dependency brings a font, so
# the screenshot has text.)
set -euo pipefail
"$(dirname "$0")/../cluster/debian-packages.sh" "the dashboard's browser test" chromium=chromium
echo "==> browser: $(chromium --version 2>/dev/null)" >&2
