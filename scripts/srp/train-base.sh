#!/usr/bin/env bash
# SRP step 1: train the unpruned model (the original's base launch: srp arch and components, inverse
# square-root schedule, BLEU-selected best checkpoint).
#
#   bash scripts/srp/train-base.sh        # -> $CKPT_ROOT/base/checkpoint_best.pt
#
# Env (defaults): DATA (data-bin/iwslt14.tokenized.de-en) ARCH (srp_iwslt_de_en) CKPT_ROOT
#   (checkpoints/srp-<data>-<arch>) SAVE_DIR ($CKPT_ROOT/base) EPOCHS (50) LR (5e-4) WARMUP (4000)
#   MAX_TOKENS (4096) DROPOUT (0.3) WEIGHT_DECAY (1e-4) LABEL_SMOOTHING (0.1) EVAL_BLEU (1)
#   EVAL_BLEU_BEAM (5) MAX_HOURS (0: no limit; else training stops after that many hours of training
#   time, summed over interrupted and continued sittings: fairseq's --stop-time-hours) SEED (1)
#   THREADS (nproc) EXTRA_ARGS, and the rest of scripts/srp/lib.sh
# Rerun into the same SAVE_DIR, an interrupted run continues from its checkpoint_last.pt.
source "$(dirname "$0")/lib.sh"
SAVE_DIR="${SAVE_DIR:-$CKPT_ROOT/base}"
EPOCHS="${EPOCHS:-50}"
MAX_HOURS="${MAX_HOURS:-0}"
srp_check_data "$DATA"
echo "srp-train-base: $ARCH on $DATA for $EPOCHS epochs -> $SAVE_DIR"
srp_train "$SAVE_DIR" --lr "$LR" --lr-scheduler inverse_sqrt --warmup-updates "$WARMUP" \
  --warmup-init-lr 1e-07 --max-epoch "$EPOCHS" --stop-time-hours "$MAX_HOURS"
