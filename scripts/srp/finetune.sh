#!/usr/bin/env bash
# SRP fine-tuning: continue training a pruned checkpoint with stock --restore-file (the srp model takes
# the pruned shapes from the checkpoint), fresh optimizer and fixed lr, no further pruning. Also the
# fine-tuning of the magnitude baseline (python -m user_dir.srp.magnitude).
#
#   PRUNED=.../stage2/checkpoint_best.pt bash scripts/srp/finetune.sh
#
# An interrupted run (SAVE_DIR/checkpoint_last.pt exists) continues from where it stopped, with its
# optimizer, schedule and data position; RESUME=0 starts over from PRUNED.
# Env (defaults): PRUNED ($CKPT_ROOT/stage2/checkpoint_best.pt) SAVE_DIR ($CKPT_ROOT/finetune)
#   EPOCHS (10) LR (5e-4, fixed) WEIGHTED_LN (1; must match the pruned model's) RESUME (1),
#   and scripts/srp/lib.sh
source "$(dirname "$0")/lib.sh"
PRUNED="${PRUNED:-$CKPT_ROOT/stage2/checkpoint_best.pt}"
SAVE_DIR="${SAVE_DIR:-$CKPT_ROOT/finetune}"
EPOCHS="${EPOCHS:-10}"
srp_check_data "$DATA"
srp_check_checkpoint "$PRUNED" "PRUNED"
ln_args=()
[[ "$WEIGHTED_LN" == 1 ]] && ln_args=(--weighted-layernorm)
start_args=(--restore-file "$PRUNED" --reset-optimizer --reset-dataloader --reset-meters --reset-lr-scheduler)
if [[ -f "$SAVE_DIR/checkpoint_last.pt" && "${RESUME:-1}" == 1 ]]; then
  # srp_train sees checkpoint_last.pt too and appends to the log
  start_args=(--restore-file "$SAVE_DIR/checkpoint_last.pt")
fi
echo "srp-finetune: $PRUNED for $EPOCHS epochs -> $SAVE_DIR"
srp_train "$SAVE_DIR" "${ln_args[@]}" "${start_args[@]}" --lr-scheduler fixed --lr "$LR" --max-epoch "$EPOCHS"
