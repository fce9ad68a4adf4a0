#!/usr/bin/env bash
# LTP stage 1 (soft): learn the per-layer thresholds with sigmoid masks and the regulariser,
# starting from a fine-tuned sentence_prediction checkpoint; then score the last checkpoint with
# hard pruning (fairseq-validate: accuracy, relative FLOPs, kept tokens per layer).
#
#   RESTORE=checkpoints/baseline-sentiment/checkpoint_best.pt bash scripts/ltp/soft.sh
#
# Env (defaults): DATA (data-bin/sentiment) RESTORE (checkpoints/baseline-$(basename DATA)/checkpoint_best.pt)
#   SAVE_DIR (checkpoints/ltp-soft-$(basename DATA)) ARCH (ltp_roberta_minilm) LR (2e-5)
#   THRESHOLD_LR (= LR) LAMBDA (0.1) TEMPERATURE (1e-3) FINAL_THRESHOLD (0.01) SCORE_NORM (fixed)
#   SCORE_LENGTH (128) REG_NORM (tokens) EPOCHS (3) BATCH (32) WEIGHT_DECAY (0) DROPOUT (0.1)
#   NUM_CLASSES (read from DATA/label; if set it must agree) MAX_POSITIONS (512) SEED (1) THREADS (2) VALIDATE (1; 0 skips the final
#   fairseq-validate) EXTRA_ARGS (appended to fairseq-train)
source "$(dirname "$0")/lib.sh"
RESTORE="${RESTORE:-checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt}"
SAVE_DIR="${SAVE_DIR:-checkpoints/ltp-soft-$(basename "$DATA")}"
LR="${LR:-2e-5}"
THRESHOLD_LR="${THRESHOLD_LR:-$LR}"
LAMBDA="${LAMBDA:-0.1}"
TEMPERATURE="${TEMPERATURE:-1e-3}"
FINAL_THRESHOLD="${FINAL_THRESHOLD:-0.01}"
SCORE_NORM="${SCORE_NORM:-fixed}"
SCORE_LENGTH="${SCORE_LENGTH:-128}"
REG_NORM="${REG_NORM:-tokens}"
EPOCHS="${EPOCHS:-3}"

ltp_check_data "$DATA"
ltp_check_checkpoint "$RESTORE" "fine-tuned (RESTORE)"
echo "ltp-soft: lambda $LAMBDA, T $TEMPERATURE, final threshold $FINAL_THRESHOLD, lr $LR (thresholds $THRESHOLD_LR), $EPOCHS epochs"
ltp_train "$SAVE_DIR" "$RESTORE" ltp_adam "$EPOCHS" "$LR" \
  --prune-mode absolute_threshold --masking-mode soft --final-token-threshold "$FINAL_THRESHOLD" \
  --temperature "$TEMPERATURE" --threshold-lr "$THRESHOLD_LR" \
  --ltp-score-norm "$SCORE_NORM" --ltp-score-length "$SCORE_LENGTH" \
  --lambda-threshold "$LAMBDA" --ltp-reg-norm "$REG_NORM"
# the hard stage continues from the end of this one (thresholds fully learned), so score that
[[ "$VALIDATE" == 0 ]] || ltp_validate "$SAVE_DIR/checkpoint_last.pt" "$SAVE_DIR"
