#!/usr/bin/env bash
# Runs every method's demo pipeline (each caches its steps), then prints one results table per method
# and writes results/demo/summary.png. METHODS="ltp kprune" make demo runs a subset.
set -uo pipefail
cd "$(dirname "$0")/../.."
METHODS=${METHODS:-"srp ltp trbert kprune"}
mkdir -p results/demo
failed=()
for m in $METHODS; do
  echo "=================== demo: $m ==================="
  start=$(date +%s)
  if bash "scripts/demo/$m.sh"; then
    echo "[demo] $m finished in $(( $(date +%s) - start )) s"
  else
    echo "[demo] $m FAILED after $(( $(date +%s) - start )) s" >&2
    failed+=("$m")
  fi
done
python scripts/demo/report.py results/demo
if [ ${#failed[@]} -gt 0 ]; then
  echo "demo failed for: ${failed[*]}" >&2
  exit 1
fi
