#!/usr/bin/env bash
# Validates `grainbench export k8s` manifests with a real validator: kubernetes-validate
# (PyPI; offline, bundled schemas) in strict mode, against two Kubernetes versions, for
# nano, micro, a named [[cut]] (called `2tier`: a name that must not start an object's
# name) and a replicated export.
#   scripts/validate-exports.sh [GRAINBENCH_BINARY]   (default: target/debug/grainbench)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/grainbench}
versions=(1.30.0 1.34.0)
command -v kubernetes-validate >/dev/null || python3 -m pip install -q kubernetes-validate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp tests/fixtures/tiny.toml "$work/cut.toml"
cat >>"$work/cut.toml" <<'TOML'

[[cut]]
name = "2tier"
units = [["buy", "browse"], ["lookup", "price", "store"]]
TOML
export_one() { # NAME SCENARIO CUT [ARGS...]
  local name=$1 scenario=$2 cut=$3
  shift 3
  "$bin" export k8s "$scenario" "$cut" "$work/$name" "$@" >/dev/null
}
export_one nano scenarios/checkout.toml nano
export_one micro scenarios/checkout.toml micro
export_one cut "$work/cut.toml" 2tier
export_one replicated scenarios/checkout.toml micro --replicas 3
for version in "${versions[@]}"; do
  for name in nano micro cut replicated; do
    kubernetes-validate --strict --quiet -k "$version" "$work/$name"/*.json
  done
  echo "kubernetes-validate --strict -k $version: nano, micro, 2tier, micro ×3 replicas valid"
done
