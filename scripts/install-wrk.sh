#!/usr/bin/env bash
# Installs wrk (a Debian package) so `grainbench calibrate` can put wrk's CPU per request
# beside the driver's. grainbench runs without it; calibrate then says wrk was not measured.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  echo "wrk already installed: $(command -v wrk)"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq wrk
command -v wrk
