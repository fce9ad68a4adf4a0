#!/usr/bin/env bash
# TR-BERT demo: MiniLM fine-tuned on long movie reviews (~500 WordPiece tokens each) vs the same
# model after TR-BERT's stages (scripts/trbert/demo-stages.sh, cached): accuracy, relative FLOPs
# and measured CPU throughput (batch 1 and 16) on the test split -> results/demo/trbert.json.
# Env: ALPHA (length-penalty weight, 0.5) THREADS (2) TIMING_EXAMPLES (48) FORCE.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
ALPHA="${ALPHA:-0.5}"
THREADS="${THREADS:-2}"
OUT="checkpoints/trbert-demo/alpha$ALPHA"
RESULT=results/demo/trbert.json

bash scripts/trbert/demo-stages.sh "$ALPHA"

MEASURE="$OUT/measure-test.json"
if [[ ! -f "$MEASURE" || "${FORCE:-0}" == 1 ]]; then
  python -m user_dir.trbert.measure data-bin/reviews --split test --threads "$THREADS" \
    --model "base=checkpoints/baseline-reviews/checkpoint_best.pt" \
    --model "trbert alpha=$ALPHA=$OUT/joint/checkpoint_last.pt" \
    --batch-size 16 --timing-examples "${TIMING_EXAMPLES:-48}" --repeats 2 --out "$MEASURE"
fi
mkdir -p results/demo
python - "$MEASURE" "$OUT/joint/validate.json" "$RESULT" <<'PY'
import json, sys
measure, validate, out = sys.argv[1:4]
m = json.load(open(measure))
v = json.load(open(validate))
# the in-process measurement and stock fairseq-validate must agree on the TR-BERT model
assert abs(m["rows"][1]["accuracy"] - v["test"]["accuracy"]) < 0.01, (m["rows"][1], v["test"])
# demo/report.py plots accuracy against "relative_flops"
keys = {"accuracy": "accuracy", "relative_flops": "rel_flops", "throughput_b1": "throughput_b1",
        "throughput_b16": "throughput_b16", "speedup_b1": "speedup_b1", "speedup_b16": "speedup_b16"}
rows = [{"model": r["model"], **{k: r[src] for k, src in keys.items()}} for r in m["rows"]]
result = {"method": "trbert",
          "task": f"long reviews, MiniLM-L6, {m['examples']} test ex.; throughput ex/s, {m['threads']} CPU threads",
          "rows": rows}
json.dump(result, open(out, "w"), indent=1)
print(json.dumps(result, indent=1))
PY
