#!/usr/bin/env bash
# Makes sure a Docker daemon answers, for the container tests (tests/it/containers.rs) and
# `run --target compose`: installs Debian's docker.io when dockerd is missing and starts
# dockerd when it is not running. Images are built FROM scratch, so nothing is pulled.
# Exits 0 either way: without Docker the container tests say "skipped: no Docker".
set -uo pipefail
if docker info >/dev/null 2>&1; then
  echo "docker: daemon running"
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker: installing docker.io"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/tmp/docker-install.log 2>&1 \
    || { $sudo_cmd apt-get update -q >/dev/null 2>&1 && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/tmp/docker-install.log 2>&1; } \
    || { echo "docker: cannot install docker.io (see /tmp/docker-install.log)"; exit 0; }
fi
echo "docker: starting dockerd"
if [ "$(id -u)" -eq 0 ]; then
  nohup dockerd >/tmp/dockerd.log 2>&1 &
else
  nohup sudo dockerd >/tmp/dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker: daemon running"
    exit 0
  fi
  sleep 0.5
done
echo "docker: dockerd did not answer within 30 s (see /tmp/dockerd.log)"
exit 0
