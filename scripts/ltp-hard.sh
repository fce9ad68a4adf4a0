#!/usr/bin/env bash
# LTP stage 2 (hard): thresholds frozen at the soft stage's values, pruned tokens physically
# removed, fine-tune the weights; then fairseq-validate the best checkpoint.
#
#   SOFT=checkpoints/ltp-soft-sentiment/checkpoint_last.pt bash scripts/ltp-hard.sh
#
# Env (defaults): DATA (data-bin/sentiment) SOFT (checkpoints/ltp-soft-$(basename DATA)/checkpoint_last.pt)
#   SAVE_DIR (checkpoints/ltp-hard-$(basename DATA)) ARCH (ltp_roberta_minilm) LR (1e-5; the method
#   searches 0.5e-5, 1e-5, 2e-5) EPOCHS (5; the method uses 10 for small sets) FINAL_THRESHOLD (0.01,
#   must equal the soft stage's) SCORE_NORM (fixed) SCORE_LENGTH (128) BATCH (32) WEIGHT_DECAY (0)
#   DROPOUT (0.1) NUM_CLASSES (2) MAX_POSITIONS (512) SEED (1) THREADS (2) VALIDATE (1; 0 skips the final fairseq-validate) EXTRA_ARGS
source "$(dirname "$0")/ltp-lib.sh"
SOFT="${SOFT:-checkpoints/ltp-soft-$(basename "$DATA")/checkpoint_last.pt}"
SAVE_DIR="${SAVE_DIR:-checkpoints/ltp-hard-$(basename "$DATA")}"
LR="${LR:-1e-5}"
EPOCHS="${EPOCHS:-5}"
FINAL_THRESHOLD="${FINAL_THRESHOLD:-0.01}"
SCORE_NORM="${SCORE_NORM:-fixed}"
SCORE_LENGTH="${SCORE_LENGTH:-128}"
WEIGHT_DECAY="${WEIGHT_DECAY:-0}"

ltp_check_data "$DATA"
ltp_check_checkpoint "$SOFT" "soft-stage (SOFT)"
TOTAL=$(ltp_total_updates "$EPOCHS")
mkdir -p "$SAVE_DIR"
echo "ltp-hard: thresholds from $SOFT, lr $LR, $TOTAL updates"
# shellcheck disable=SC2046,SC2086
fairseq-train "$DATA" $(ltp_task_args) --arch "$ARCH" \
  --prune-mode absolute_threshold --masking-mode hard --final-token-threshold "$FINAL_THRESHOLD" \
  --ltp-score-norm "$SCORE_NORM" --ltp-score-length "$SCORE_LENGTH" \
  --criterion ltp_sentence_prediction \
  --restore-file "$SOFT" --reset-optimizer --reset-dataloader --reset-meters --reset-lr-scheduler \
  --optimizer adam --weight-decay "$WEIGHT_DECAY" --clip-norm 0.0 \
  --lr-scheduler polynomial_decay --lr "$LR" --total-num-update "$TOTAL" --warmup-updates 0 \
  --batch-size "$BATCH" --max-epoch "$EPOCHS" --required-batch-size-multiple 1 \
  --dropout "$DROPOUT" --attention-dropout "$DROPOUT" --seed "$SEED" --num-workers 0 \
  --best-checkpoint-metric accuracy --maximize-best-checkpoint-metric --no-epoch-checkpoints \
  --save-dir "$SAVE_DIR" --log-format simple --log-interval 50 $DEVICE_ARGS $EXTRA_ARGS \
  2>&1 | tee "$SAVE_DIR/train.log"
[[ "$VALIDATE" == 0 ]] || ltp_validate "$SAVE_DIR/checkpoint_best.pt" "$SAVE_DIR"
