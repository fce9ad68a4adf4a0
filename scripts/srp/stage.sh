#!/usr/bin/env bash
# One SRP pruning run (used by stage1.sh, stage2.sh and single-stage.sh): score the groups
# of PRETRAINED, freeze the selected ones and shrink their connectivity to 0 over PERIOD epochs with KD
# from PRETRAINED, slice them, and fine-tune for the rest of EPOCHS, all in one stock fairseq-train.
#
#   STAGE=1 PRETRAINED=.../base/checkpoint_best.pt bash scripts/srp/stage.sh
#
# Env (defaults): STAGE (0) PRETRAINED (required) SAVE_DIR ($CKPT_ROOT/stage$STAGE) RATE (0.2)
#   PERIOD (20) EPOCHS (PERIOD + 10) DECREASING (sa) WARMING_UP (0) PRUNING_ITER (1) SCORE_BATCHES (1)
#   WEIGHTED_LN (1) LR (5e-4, fixed) PROB_KD (0.7) TEMPERATURE (10) SRP (1; 0 = the ablation without
#   --srp: select and slice at once, no KD), and the rest of scripts/srp/lib.sh
source "$(dirname "$0")/lib.sh"
STAGE="${STAGE:-0}"
PRETRAINED="${PRETRAINED:?set PRETRAINED to the checkpoint to prune}"
SAVE_DIR="${SAVE_DIR:-$CKPT_ROOT/stage$STAGE}"
EPOCHS="${EPOCHS:-$((PERIOD + 10))}"
SRP="${SRP:-1}"
srp_check_data "$DATA"
srp_check_checkpoint "$PRETRAINED" "PRETRAINED"
mapfile -t prune < <(srp_prune_args "$STAGE")
if [[ "$SRP" != 1 ]]; then
  prune=("${prune[@]:1}")  # drop --srp
fi
echo "srp-stage: stage $STAGE of $PRETRAINED at rate $RATE, $PERIOD pruning epochs of $EPOCHS -> $SAVE_DIR"
srp_train "$SAVE_DIR" "${prune[@]}" --pretrained-model "$PRETRAINED" --max-epoch "$EPOCHS"
