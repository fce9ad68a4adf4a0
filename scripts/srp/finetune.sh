#!/usr/bin/env bash
# SRP fine-tuning: continue training a pruned checkpoint with stock --restore-file (the srp model takes
# the pruned shapes from the checkpoint), fresh optimizer and fixed lr, no further pruning.
#
#   PRUNED=.../stage2/checkpoint_best.pt bash scripts/srp/finetune.sh
#
# Env (defaults): PRUNED ($CKPT_ROOT/stage2/checkpoint_best.pt) SAVE_DIR ($CKPT_ROOT/finetune)
#   EPOCHS (10) LR (5e-4, fixed) WEIGHTED_LN (1; must match the pruned model's), and scripts/srp/lib.sh
source "$(dirname "$0")/lib.sh"
PRUNED="${PRUNED:-$CKPT_ROOT/stage2/checkpoint_best.pt}"
SAVE_DIR="${SAVE_DIR:-$CKPT_ROOT/finetune}"
EPOCHS="${EPOCHS:-10}"
srp_check_data "$DATA"
srp_check_checkpoint "$PRUNED" "PRUNED"
ln_args=()
[[ "$WEIGHTED_LN" == 1 ]] && ln_args=(--weighted-layernorm)
echo "srp-finetune: $PRUNED for $EPOCHS epochs -> $SAVE_DIR"
srp_train "$SAVE_DIR" "${ln_args[@]}" --restore-file "$PRUNED" --reset-optimizer --reset-dataloader \
  --reset-meters --reset-lr-scheduler --lr-scheduler fixed --lr "$LR" --max-epoch "$EPOCHS"
