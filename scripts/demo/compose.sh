#!/usr/bin/env bash
# Composition demo: the Kprune demo's pruned classifier (50 % of the FLOPs removed, no retraining)
# -> LTP's soft and hard stages on top of it, so the encoder is narrower AND sees fewer tokens. Stock
# fairseq-validate scores the result; then every sentiment model of the demo (baseline, Kprune, LTP
# if it ran, Kprune -> LTP) is measured in one process with the bench's harness: accuracy, relative
# FLOPs, speed-up at batch 1 and 32 -> results/demo/compose.json.
#
#   bash scripts/demo/compose.sh           # runs scripts/demo/kprune.sh first when its model is missing
#
# Env (defaults): DATA (data-bin/sentiment) BASELINE (checkpoints/baseline-<data>/checkpoint_best.pt)
#   LAMBDA (0.03) KPRUNE (checkpoints/kprune-demo/checkpoint_pruned.pt) OUT_ROOT
#   (checkpoints/compose-demo/<data>) THREADS (2) REPEATS (2) TIMING_EXAMPLES (200 at batch 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x .venv/bin/python ]] && export PATH="$PWD/.venv/bin:$PATH"
export DATA="${DATA:-data-bin/sentiment}" THREADS="${THREADS:-2}"
LAMBDA="${LAMBDA:-0.03}"
BASELINE="${BASELINE:-checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt}"
KPRUNE="${KPRUNE:-checkpoints/kprune-demo/checkpoint_pruned.pt}"
OUT_ROOT="${OUT_ROOT:-checkpoints/compose-demo/$(basename "$DATA")}"
LTP_ALONE="checkpoints/ltp-demo/$(basename "$DATA")/lambda$LAMBDA/hard/checkpoint_best.pt"
COMPOSED="$OUT_ROOT/lambda$LAMBDA/hard/checkpoint_best.pt"

if [[ ! -f "$KPRUNE" ]]; then
  echo "demo-compose: no Kprune model at $KPRUNE; running the Kprune demo first"
  DATA="$DATA" BASELINE="$BASELINE" bash scripts/demo/kprune.sh
fi
# LTP's stages with the pruned model as their starting point (the scripts adopt its layer sizes)
BASELINE="$KPRUNE" OUT_ROOT="$OUT_ROOT" bash scripts/ltp/stages.sh ltp "$LAMBDA"
VALIDATE=1 bash scripts/ltp/validate.sh "$COMPOSED" > "$(dirname "$COMPOSED")/validate-stock.log" 2>&1 \
  || { tail -20 "$(dirname "$COMPOSED")/validate-stock.log" >&2; exit 1; }
grep "valid on" "$(dirname "$COMPOSED")/validate.log" | sed 's/^.*| \(valid on\)/[kprune -> ltp] \1/' | cut -c1-160

models=(--model "base=$BASELINE" --model "kprune=$KPRUNE")
labels=(--label base=base --label "kprune=Kprune 50%")
if [[ -f "$LTP_ALONE" ]]; then
  models+=(--model "ltp=$LTP_ALONE")
  labels+=(--label "ltp=LTP lambda $LAMBDA")
fi
models+=(--model "composed=$COMPOSED")
labels+=(--label "composed=Kprune 50% -> LTP lambda $LAMBDA")
mkdir -p results/demo
python -m user_dir.bench.compare "$DATA" "${models[@]}" --splits valid,test --batch-sizes 1,32 \
  --timing-limit "1:${TIMING_EXAMPLES:-200}" --rounds "${REPEATS:-2}" --threads "$THREADS" \
  --out "$OUT_ROOT/measure.json"
python scripts/demo/rows.py "$OUT_ROOT/measure.json" --method compose --split test \
  --task "sentiment sentences (test), MiniLM-L6: Kprune then LTP" "${labels[@]}" --out results/demo/compose.json
