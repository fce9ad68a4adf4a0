#!/usr/bin/env bash
# TR-BERT demo: MiniLM fine-tuned on long movie reviews (~500 WordPiece tokens each) vs the same
# model after TR-BERT's stages (scripts/trbert/demo-stages.sh, cached): accuracy, relative FLOPs
# and measured CPU throughput (batch 1 and 16) on the test split -> results/demo/trbert.json.
# Env: DATA (data-bin/reviews) BASELINE (checkpoints/baseline-<data>/checkpoint_best.pt) ALPHA
#   (length-penalty weight, 0.5) THREADS (2) TIMING_EXAMPLES (48) FORCE, and demo-stages.sh's knobs.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
ALPHA="${ALPHA:-0.5}"
THREADS="${THREADS:-2}"
export DATA="${DATA:-data-bin/reviews}"
export BASELINE="${BASELINE:-checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt}"
export OUT="checkpoints/trbert-demo/$(basename "$DATA")/alpha$ALPHA"
RESULT=results/demo/trbert.json

bash scripts/trbert/demo-stages.sh "$ALPHA"

MEASURE="$OUT/measure-test.json"
if [[ ! -f "$MEASURE" || "${FORCE:-0}" == 1 ]]; then
  # the harness of the bench (user_dir/bench); batch 1 over TIMING_EXAMPLES reviews, batch 16
  # (the paper's) and 32 (every results file's)
  python -m user_dir.bench.compare "$DATA" --splits valid,test --threads "$THREADS" \
    --model "base=$BASELINE" --model "trbert=$OUT/joint/checkpoint_last.pt" --batch-sizes 1,16,32 \
    --timing-limit "1:${TIMING_EXAMPLES:-48},16:${TIMING_EXAMPLES:-48},32:${TIMING_EXAMPLES:-64}" --rounds 2 \
    --out "$MEASURE"
fi
mkdir -p results/demo
python - "$MEASURE" "$OUT/joint/validate.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["models"]["trbert"]["test"]
v = json.load(open(sys.argv[2]))["test"]
# the in-process measurement and stock fairseq-validate must agree on the TR-BERT model
assert abs(m["accuracy"] - v["accuracy"]) < 0.01, (m, v)
PY
python scripts/demo/rows.py "$MEASURE" --method trbert --split test \
  --task "long reviews (test), MiniLM-L6" --label base=base --label "trbert=TR-BERT alpha $ALPHA" --out "$RESULT"
