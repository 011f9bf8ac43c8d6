#!/usr/bin/env bash
# Renders a grainbench HTML report to a PNG with headless Chromium, so anyone can look at
# the page without a browser. Usage: scripts/screenshot-report.sh REPORT.html [OUT.png]
# Needs Debian's `chromium` package (apt-get install chromium); skips, saying so, without it.
set -euo pipefail
report=${1:?usage: screenshot-report.sh REPORT.html [OUT.png]}
out=${2:-${report%.html}.png}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "skipped: Chromium is not installed (apt-get install chromium)" >&2
  exit 0
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1200,6000 \
  --screenshot="$(realpath -m "$out")" "file://$(realpath "$report")" >/dev/null 2>&1
echo "$out"
