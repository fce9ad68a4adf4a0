#!/usr/bin/env bash
# LTP stage 2 (hard): thresholds frozen at the soft stage's values, pruned tokens physically
# removed, fine-tune the weights; then fairseq-validate the best checkpoint.
#
#   SOFT=checkpoints/ltp-soft-sentiment/checkpoint_last.pt bash scripts/ltp/hard.sh
#
# Env (defaults): DATA (data-bin/sentiment) SOFT (checkpoints/ltp-soft-$(basename DATA)/checkpoint_last.pt)
#   SAVE_DIR (checkpoints/ltp-hard-$(basename DATA)) ARCH (ltp_roberta_minilm) LR (1e-5; the method
#   searches 0.5e-5, 1e-5, 2e-5) EPOCHS (5; the method uses 10 for small sets) FINAL_THRESHOLD (0.01,
#   must equal the soft stage's) SCORE_NORM (fixed) SCORE_LENGTH (128) BATCH (32) WEIGHT_DECAY (0)
#   DROPOUT (0.1) NUM_CLASSES (read from DATA/label; if set it must agree) MAX_POSITIONS (512) SEED (1) THREADS (2) VALIDATE (1; 0 skips the final fairseq-validate) EXTRA_ARGS
source "$(dirname "$0")/lib.sh"
SOFT="${SOFT:-checkpoints/ltp-soft-$(basename "$DATA")/checkpoint_last.pt}"
SAVE_DIR="${SAVE_DIR:-checkpoints/ltp-hard-$(basename "$DATA")}"
LR="${LR:-1e-5}"
EPOCHS="${EPOCHS:-5}"
FINAL_THRESHOLD="${FINAL_THRESHOLD:-0.01}"
SCORE_NORM="${SCORE_NORM:-fixed}"
SCORE_LENGTH="${SCORE_LENGTH:-128}"

ltp_check_data "$DATA"
ltp_check_checkpoint "$SOFT" "soft-stage (SOFT)"
echo "ltp-hard: thresholds from $SOFT, lr $LR, $EPOCHS epochs"
ltp_train "$SAVE_DIR" "$SOFT" adam "$EPOCHS" "$LR" \
  --prune-mode absolute_threshold --masking-mode hard --final-token-threshold "$FINAL_THRESHOLD" \
  --ltp-score-norm "$SCORE_NORM" --ltp-score-length "$SCORE_LENGTH"
[[ "$VALIDATE" == 0 ]] || ltp_validate "$SAVE_DIR/checkpoint_best.pt" "$SAVE_DIR"
