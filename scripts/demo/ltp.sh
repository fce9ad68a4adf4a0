#!/usr/bin/env bash
# LTP demo: the fine-tuned MiniLM sentiment classifier -> LTP soft stage (learn the thresholds) ->
# hard stage (thresholds frozen, pruned tokens removed); then accuracy, relative encoder FLOPs and
# measured CPU throughput (batch 32, same process) of the baseline and the LTP model on the test
# split. Prints a table and writes results/demo/ltp.json. Every training step is cached.
#
#   bash scripts/demo/ltp.sh                 # prepares data/model and fine-tunes first if needed
#
# Env (defaults): LAMBDA (0.03) DATA (data-bin/sentiment) THREADS (2: training and timing)
#   REPEATS (2 timing passes, the best counts), plus the demo-scale knobs of scripts/ltp/stages.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x .venv/bin/python ]] && export PATH="$PWD/.venv/bin:$PATH"
LAMBDA="${LAMBDA:-0.03}"
export DATA="${DATA:-data-bin/sentiment}" THREADS="${THREADS:-2}"
REPEATS="${REPEATS:-2}"
BASELINE="checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt"
LTP="checkpoints/ltp-demo/lambda$LAMBDA/hard/checkpoint_best.pt"
export PYTHONWARNINGS=ignore

bash scripts/ltp/stages.sh ltp "$LAMBDA"

mkdir -p results/demo
python -m user_dir.ltp.measure --data "$DATA" --model "base=$BASELINE" --model "ltp=$LTP" \
  --splits test --batch-sizes 32 --repeats "$REPEATS" --threads "$THREADS" \
  --out results/demo/ltp.measure.json >/dev/null
python - "$LAMBDA" <<'EOF'
import json, sys
lam = sys.argv[1]
m = json.load(open("results/demo/ltp.measure.json"))["models"]
rows = []
for name, label in (("base", "base"), ("ltp", f"LTP lambda {lam}")):
    r = m[name]
    rows.append({"model": label, "accuracy": round(r["test"]["accuracy"], 2),
                 "relative_flops": round(r["test"]["rel_flops"], 4),
                 "throughput_b32": round(r["b32"]["throughput"], 1),
                 "speedup_b32": round(r["b32"]["throughput"] / m["base"]["b32"]["throughput"], 2)})
result = {"method": "ltp", "task": "sentiment sentences (test), MiniLM-L6", "rows": rows}
json.dump(result, open("results/demo/ltp.json", "w"), indent=1)
keys = list(rows[0])
print(" | ".join(keys))
for r in rows:
    print(" | ".join(str(r[k]) for k in keys))
print("written: results/demo/ltp.json")
EOF
rm -f results/demo/ltp.measure.json
