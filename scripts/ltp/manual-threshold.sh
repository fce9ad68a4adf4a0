#!/usr/bin/env bash
# Manual-threshold baseline: LTP's threshold schedule without learning (delta = 0), i.e. layer l
# prunes tokens scoring below FINAL_THRESHOLD * l / N; hard pruning from the start, fine-tune the
# fine-tuned model under it, then fairseq-validate.
#
#   FINAL_THRESHOLD=0.02 RESTORE=checkpoints/baseline-sentiment/checkpoint_best.pt bash scripts/ltp/manual-threshold.sh
#
# Env (defaults): DATA (data-bin/sentiment) RESTORE (checkpoints/baseline-$(basename DATA)/checkpoint_best.pt)
#   SAVE_DIR (checkpoints/ltp-manual-$(basename DATA)) FINAL_THRESHOLD (0.01) SCORE_NORM (fixed)
#   SCORE_LENGTH (128) ARCH (ltp_roberta_minilm) LR (1e-5) EPOCHS (5) BATCH (32) WEIGHT_DECAY (0)
#   DROPOUT (0.1) NUM_CLASSES (read from DATA/label; if set it must agree) MAX_POSITIONS (512) SEED (1) THREADS (2) VALIDATE (1; 0 skips the final fairseq-validate) EXTRA_ARGS
source "$(dirname "$0")/lib.sh"
RESTORE="${RESTORE:-checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt}"
SAVE_DIR="${SAVE_DIR:-checkpoints/ltp-manual-$(basename "$DATA")}"
FINAL_THRESHOLD="${FINAL_THRESHOLD:-0.01}"
SCORE_NORM="${SCORE_NORM:-fixed}"
SCORE_LENGTH="${SCORE_LENGTH:-128}"
LR="${LR:-1e-5}"
EPOCHS="${EPOCHS:-5}"

ltp_check_data "$DATA"
ltp_check_checkpoint "$RESTORE" "fine-tuned (RESTORE)"
echo "ltp-manual-threshold: final threshold $FINAL_THRESHOLD (not learned), lr $LR, $EPOCHS epochs"
ltp_train "$SAVE_DIR" "$RESTORE" adam "$EPOCHS" "$LR" \
  --prune-mode absolute_threshold --masking-mode hard --final-token-threshold "$FINAL_THRESHOLD" \
  --ltp-score-norm "$SCORE_NORM" --ltp-score-length "$SCORE_LENGTH"
[[ "$VALIDATE" == 0 ]] || ltp_validate "$SAVE_DIR/checkpoint_best.pt" "$SAVE_DIR"
