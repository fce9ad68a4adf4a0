#!/usr/bin/env bash
# Top-k token pruning baseline: the first 3 layers keep every token, then the kept fraction falls
# linearly to KEEP_RATE at the last layer; fine-tune the fine-tuned model under that pruning
# (pruned tokens removed), then fairseq-validate.
#
#   KEEP_RATE=0.4 RESTORE=checkpoints/baseline-sentiment/checkpoint_best.pt bash scripts/ltp-topk.sh
#
# Env (defaults): DATA (data-bin/sentiment) RESTORE (checkpoints/baseline-$(basename DATA)/checkpoint_best.pt)
#   SAVE_DIR (checkpoints/ltp-topk-$(basename DATA)) KEEP_RATE (0.5) ARCH (ltp_roberta_minilm) LR (1e-5)
#   EPOCHS (5) BATCH (32) WEIGHT_DECAY (0) DROPOUT (0.1) NUM_CLASSES (2) MAX_POSITIONS (512) SEED (1)
#   THREADS (2) VALIDATE (1; 0 skips the final fairseq-validate) EXTRA_ARGS
source "$(dirname "$0")/ltp-lib.sh"
RESTORE="${RESTORE:-checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt}"
SAVE_DIR="${SAVE_DIR:-checkpoints/ltp-topk-$(basename "$DATA")}"
KEEP_RATE="${KEEP_RATE:-0.5}"
LR="${LR:-1e-5}"
EPOCHS="${EPOCHS:-5}"
WEIGHT_DECAY="${WEIGHT_DECAY:-0}"

ltp_check_data "$DATA"
ltp_check_checkpoint "$RESTORE" "fine-tuned (RESTORE)"
TOTAL=$(ltp_total_updates "$EPOCHS")
mkdir -p "$SAVE_DIR"
echo "ltp-topk: keep rate $KEEP_RATE at the last layer, lr $LR, $TOTAL updates"
# shellcheck disable=SC2046,SC2086
fairseq-train "$DATA" $(ltp_task_args) --arch "$ARCH" \
  --prune-mode topk --masking-mode hard --token-keep-rate "$KEEP_RATE" \
  --criterion ltp_sentence_prediction \
  --restore-file "$RESTORE" --reset-optimizer --reset-dataloader --reset-meters --reset-lr-scheduler \
  --optimizer adam --weight-decay "$WEIGHT_DECAY" --clip-norm 0.0 \
  --lr-scheduler polynomial_decay --lr "$LR" --total-num-update "$TOTAL" --warmup-updates 0 \
  --batch-size "$BATCH" --max-epoch "$EPOCHS" --required-batch-size-multiple 1 \
  --dropout "$DROPOUT" --attention-dropout "$DROPOUT" --seed "$SEED" --num-workers 0 \
  --best-checkpoint-metric accuracy --maximize-best-checkpoint-metric --no-epoch-checkpoints \
  --save-dir "$SAVE_DIR" --log-format simple --log-interval 50 $DEVICE_ARGS $EXTRA_ARGS \
  2>&1 | tee "$SAVE_DIR/train.log"
[[ "$VALIDATE" == 0 ]] || ltp_validate "$SAVE_DIR/checkpoint_best.pt" "$SAVE_DIR"
