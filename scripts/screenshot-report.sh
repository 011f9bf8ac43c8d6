#!/usr/bin/env bash
# Renders a grainbench HTML report to a PNG with headless Chromium, so anyone can look at
# the page without a browser: the whole page, its height measured first (at the window's
# width), not a fixed window that cuts a long page off.
# Usage: scripts/screenshot-report.sh REPORT.html [OUT.png] [WIDTH]
# Needs Debian's `chromium` package (apt-get install chromium); skips, saying so, without it.
set -euo pipefail
report=${1:?usage: screenshot-report.sh REPORT.html [OUT.png]}
out=${2:-${report%.html}.png}
width=${3:-1200}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "skipped: Chromium is not installed (apt-get install chromium)" >&2
  exit 0
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chrome() {
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars "$@"
}
# A copy of the page that writes its own height into the DOM, read back with --dump-dom.
probe="$profile/probe.html"
sed 's|</body>|<script>document.body.setAttribute("data-page-height", document.documentElement.scrollHeight)</script></body>|' \
  "$report" >"$probe"
height=$(chrome --window-size="$width,1000" --dump-dom "file://$probe" 2>/dev/null |
  grep -o 'data-page-height="[0-9]*"' | grep -o '[0-9]*' | head -n 1 || true)
height=${height:-6000}
[ "$height" -gt 32000 ] && height=32000 # Chromium's limit for one capture
chrome --window-size="$width,$height" \
  --screenshot="$(realpath -m "$out")" "file://$(realpath "$report")" >/dev/null 2>&1
echo "$out (${width}×${height})"
