#!/usr/bin/env bash
# Performance figures of every method, written under results/ (<method>.json and <method>.md).
# Timings are ratios measured inside one process; run on an otherwise idle machine.
set -uo pipefail
cd "$(dirname "$0")/.."
METHODS=${METHODS:-"srp ltp trbert kprune"}
mkdir -p results
failed=()
for m in $METHODS; do
  echo "=================== bench: $m ==================="
  python "scripts/bench_$m.py" || failed+=("$m")
  [ -f "results/$m.md" ] && cat "results/$m.md"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench failed for: ${failed[*]}" >&2
  exit 1
fi
