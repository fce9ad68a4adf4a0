#!/usr/bin/env bash
# Kprune pipeline: prune a fine-tuned sentence_prediction checkpoint without retraining, then score
# the result with stock fairseq-validate on the dev and test splits.
#
#   CONSTRAINT=0.6 bash scripts/kprune/prune.sh
#   RESTORE=checkpoints/kprune-60/checkpoint_pruned.pt bash scripts/ltp/soft.sh   # token pruning on top
#
# Env (defaults): DATA (data-bin/sentiment)
#   BASELINE (checkpoints/baseline-$(basename DATA)/checkpoint_best.pt) CONSTRAINT (0.5)
#   TUNING (1: --sublayerwise-tuning) NUM_TOKENS (100000) SEED (0) BATCH (32)
#   SAVE_DIR (checkpoints/kprune-<100·CONSTRAINT>) THREADS (2) EXTRA_ARGS (appended to fairseq-kprune)
# Output in SAVE_DIR: checkpoint_pruned.pt, kprune_log.json, kprune.log, validate.log, result.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x .venv/bin/python ]] && export PATH="$PWD/.venv/bin:$PATH"
DATA="${DATA:-data-bin/sentiment}"
BASELINE="${BASELINE:-checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt}"
CONSTRAINT="${CONSTRAINT:-0.5}"
TUNING="${TUNING:-1}"
NUM_TOKENS="${NUM_TOKENS:-100000}"
SEED="${SEED:-0}"
BATCH="${BATCH:-32}"
SAVE_DIR="${SAVE_DIR:-checkpoints/kprune-$(python -c "print(round(100 * $CONSTRAINT))")}"
THREADS="${THREADS:-2}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
DEVICE_ARGS="${DEVICE_ARGS:-$(python -c 'import torch; print("" if torch.cuda.is_available() else "--cpu")')}"  # --cpu keeps a GPU machine's run on the CPU

if [[ ! -f "$BASELINE" ]]; then
  echo "error: fine-tuned checkpoint $BASELINE not found; run scripts/models/finetune-baseline.sh" >&2
  exit 2
fi
TUNE_FLAG=""
[[ "$TUNING" == "1" ]] && TUNE_FLAG="--sublayerwise-tuning"
mkdir -p "$SAVE_DIR"
# shellcheck disable=SC2086
fairseq-kprune "$DATA" --user-dir user_dir --path "$BASELINE" --constraint "$CONSTRAINT" \
  --num-tokens "$NUM_TOKENS" --seed "$SEED" --batch-size "$BATCH" $TUNE_FLAG --save-dir "$SAVE_DIR" \
  $DEVICE_ARGS $EXTRA_ARGS 2>&1 | tee "$SAVE_DIR/kprune.log"
# shellcheck disable=SC2086
fairseq-validate "$DATA" --user-dir user_dir --task sentence_prediction \
  --criterion sentence_prediction --path "$SAVE_DIR/checkpoint_pruned.pt" --valid-subset "$(if [[ -f "$DATA/input0/test.idx" ]]; then echo valid,test; else echo valid; fi)" \
  --batch-size "$BATCH" --required-batch-size-multiple 1 \
  --num-workers 0 --log-format simple $DEVICE_ARGS 2>&1 | tee "$SAVE_DIR/validate.log"

python - "$SAVE_DIR" <<'PY'
import json, re, sys
save = sys.argv[1]
acc = {}
for line in open(f"{save}/validate.log"):
    m = re.search(r"valid on '(\w+)' subset .*?accuracy ([0-9.]+)", line)
    if m:
        acc[m.group(1)] = float(m.group(2))
log = json.load(open(f"{save}/kprune_log.json"))
result = {"dev_accuracy": acc.get("valid"), "test_accuracy": acc.get("test"),
          "relative_flops": log["relative_flops"], "pruning_seconds": log["loop_seconds"],
          "encoder_layer_heads": log["encoder_layer_heads"], "encoder_layer_ffn_dims": log["encoder_layer_ffn_dims"]}
json.dump(result, open(f"{save}/result.json", "w"), indent=1)
print("kprune-prune:", json.dumps(result))
PY
