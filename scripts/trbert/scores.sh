#!/usr/bin/env bash
# TR-BERT stage 2: residual-strategy scores of every training example from the fine-tuned model,
# stored keyed by the fairseq sample id (the original's --do_eval_grad).
#   FINETUNED=checkpoints/baseline-reviews/checkpoint_best.pt bash scripts/trbert/scores.sh
# Env: DATA FINETUNED SCORES (default $OUT/scores.pt) SPLIT (train) REDUCE_LAYERS SCORE_LAYER
#      SCORE_BATCH (8) THREADS
source "$(dirname "$0")/lib.sh"
SCORES="${SCORES:-$OUT/scores.pt}"
require_file "$FINETUNED" "fine-tune first (scripts/models/finetune-baseline.sh with DATA=$DATA)"
if [[ -f "$SCORES" && "${FORCE:-0}" != 1 ]]; then echo "trbert-scores: $SCORES exists (cached)"; exit 0; fi
resolve_labels "$DATA"
args=()
[[ -n "$REDUCE_LAYERS" ]] && args+=(--reduce-layers "$REDUCE_LAYERS")
[[ -n "${SCORE_LAYER:-}" ]] && args+=(--score-layer "$SCORE_LAYER")
python -m user_dir.trbert.residual_scores "$DATA" --user-dir user_dir --task sentence_prediction \
  "${LABEL_ARGS[@]}" --path "$FINETUNED" --valid-subset "${SPLIT:-train}" \
  --batch-size "${SCORE_BATCH:-8}" --num-workers 0 --scores-out "$SCORES" "${args[@]}"
