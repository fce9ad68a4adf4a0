#!/usr/bin/env bash
# Kprune demo: prune the fine-tuned MiniLM sentiment classifier at 50 % of its FLOPs removed, with no
# retraining, then score it with stock fairseq-validate and time it on the CPU next to the
# unpruned model. Prints a before/after table and writes results/demo/kprune.json.
#
#   bash scripts/demo/kprune.sh            # prepares data/model and fine-tunes first if needed
#
# Env (defaults): DATA (data-bin/sentiment)
#   BASELINE (checkpoints/baseline-$(basename DATA)/checkpoint_best.pt, made by finetune-baseline.sh)
#   OUT (checkpoints/kprune-demo) CONSTRAINT (0.5) NUM_TOKENS (100000) TUNING (1: --sublayerwise-tuning)
#   THREADS (2) TIMING_EXAMPLES (200 at batch 1) FORCE (0: reuse a pruned checkpoint made with the
#   same settings)
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x .venv/bin/python ]] && export PATH="$PWD/.venv/bin:$PATH"
DATA="${DATA:-data-bin/sentiment}"
BASELINE="${BASELINE:-checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt}"
OUT="${OUT:-checkpoints/kprune-demo}"
CONSTRAINT="${CONSTRAINT:-0.5}"
NUM_TOKENS="${NUM_TOKENS:-100000}"
TUNING="${TUNING:-1}"
THREADS="${THREADS:-2}"
FORCE="${FORCE:-0}"
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
DEVICE_ARGS="$(python -c 'import torch; print("" if torch.cuda.is_available() else "--cpu")')"

if [[ ! -f "$BASELINE" ]]; then
  echo "demo-kprune: no fine-tuned baseline at $BASELINE; preparing MiniLM and the data, then fine-tuning"
  bash scripts/models/prepare-minilm.sh
  bash scripts/data/prepare-sentiment.sh
  # demo scale: 2 epochs (the recipe default is 3), the baseline the README figures come from
  DATA="$DATA" EPOCHS=2 bash scripts/models/finetune-baseline.sh
fi

TUNE_FLAG=""
[[ "$TUNING" == "1" ]] && TUNE_FLAG="--sublayerwise-tuning"
mkdir -p "$OUT" results/demo
# reuse the pruned model when it was made from the same baseline with the same settings
same_settings() {
  [[ -f "$OUT/checkpoint_pruned.pt" && -f "$OUT/kprune_log.json" ]] || return 1
  python - "$OUT/kprune_log.json" "$BASELINE" "$CONSTRAINT" "$NUM_TOKENS" "$TUNING" <<'PY'
import json, os, sys
log, base, c, n, tune = sys.argv[1:]
s = json.load(open(log))["settings"]
ok = (os.path.abspath(s["path"]) == os.path.abspath(base) and float(s["constraint"]) == float(c)
      and int(s["num_tokens"]) == int(n) and bool(s["sublayerwise_tuning"]) == (tune == "1"))
sys.exit(0 if ok else 1)
PY
}
if [[ "$FORCE" != "1" ]] && same_settings; then
  echo "demo-kprune: reusing $OUT/checkpoint_pruned.pt (same settings; FORCE=1 to prune again)"
else
  # shellcheck disable=SC2086
  fairseq-kprune "$DATA" --user-dir user_dir --path "$BASELINE" --constraint "$CONSTRAINT" \
    --num-tokens "$NUM_TOKENS" $TUNE_FLAG --save-dir "$OUT" --no-progress-bar $DEVICE_ARGS \
    2>&1 | tee "$OUT/kprune.log"
fi

# accuracy from the stock tool, for the unpruned and the pruned checkpoint
for name in base pruned; do
  ckpt="$BASELINE"; [[ "$name" == pruned ]] && ckpt="$OUT/checkpoint_pruned.pt"
  # shellcheck disable=SC2086
  fairseq-validate "$DATA" --user-dir user_dir --task sentence_prediction --criterion sentence_prediction \
    --path "$ckpt" --valid-subset valid,test --batch-size 32 --required-batch-size-multiple 1 --num-workers 0 --log-format simple \
    $DEVICE_ARGS > "$OUT/validate-$name.log" 2>&1 || { tail -20 "$OUT/validate-$name.log" >&2; exit 1; }
  grep "valid on" "$OUT/validate-$name.log" | sed "s/^/[$name] /"
done

# accuracy, FLOPs and CPU throughput of both models in one process (the bench's harness, user_dir/bench)
python -m user_dir.bench.compare "$DATA" --model "base=$BASELINE" --model "pruned=$OUT/checkpoint_pruned.pt" \
  --splits valid,test --batch-sizes 1,32 --timing-limit "1:${TIMING_EXAMPLES:-200}" --rounds 2 \
  --threads "$THREADS" --out "$OUT/measure.json" > "$OUT/measure.log" 2>&1 \
  || { tail -20 "$OUT/measure.log" >&2; exit 1; }
EXTRA=$(python -c "import json; log = json.load(open('$OUT/kprune_log.json')); print(json.dumps({'pruning_seconds': log['loop_seconds'], 'settings': log['settings'], 'peak_rss_mb': log['peak_rss_mb']}))")
python scripts/demo/rows.py "$OUT/measure.json" --method kprune --split test \
  --task "$(basename "$DATA") (test accuracy; MiniLM-L6, no retraining)" --label base=base \
  --label "pruned=kprune-$(python -c "print(round(100 * $CONSTRAINT))")%" --extra "$EXTRA" --out results/demo/kprune.json
