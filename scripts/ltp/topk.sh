#!/usr/bin/env bash
# Top-k token pruning baseline: the first 3 layers keep every token, then the kept fraction falls
# linearly to KEEP_RATE at the last layer; fine-tune the fine-tuned model under that pruning
# (pruned tokens removed), then fairseq-validate.
#
#   KEEP_RATE=0.4 RESTORE=checkpoints/baseline-sentiment/checkpoint_best.pt bash scripts/ltp/topk.sh
#
# Env (defaults): DATA (data-bin/sentiment) RESTORE (checkpoints/baseline-$(basename DATA)/checkpoint_best.pt)
#   SAVE_DIR (checkpoints/ltp-topk-$(basename DATA)) KEEP_RATE (0.5) ARCH (ltp_roberta_minilm) LR (1e-5)
#   EPOCHS (5) BATCH (32) WEIGHT_DECAY (0) DROPOUT (0.1) NUM_CLASSES (read from DATA/label; if set it must agree) MAX_POSITIONS (512) SEED (1)
#   THREADS (2) VALIDATE (1; 0 skips the final fairseq-validate) EXTRA_ARGS
source "$(dirname "$0")/lib.sh"
RESTORE="${RESTORE:-checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt}"
SAVE_DIR="${SAVE_DIR:-checkpoints/ltp-topk-$(basename "$DATA")}"
KEEP_RATE="${KEEP_RATE:-0.5}"
LR="${LR:-1e-5}"
EPOCHS="${EPOCHS:-5}"

ltp_check_data "$DATA"
ltp_check_checkpoint "$RESTORE" "fine-tuned (RESTORE)"
echo "ltp-topk: keep rate $KEEP_RATE at the last layer, lr $LR, $EPOCHS epochs"
ltp_train "$SAVE_DIR" "$RESTORE" adam "$EPOCHS" "$LR" \
  --prune-mode topk --masking-mode hard --token-keep-rate "$KEEP_RATE"
[[ "$VALIDATE" == 0 ]] || ltp_validate "$SAVE_DIR/checkpoint_best.pt" "$SAVE_DIR"
