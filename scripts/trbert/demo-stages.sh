#!/usr/bin/env bash
# Demo-scale TR-BERT on the long movie reviews with the converted MiniLM, for one length-penalty
# weight: baseline fine-tuning (shared by every alpha) and the TR-BERT stages into
# checkpoints/trbert-demo/alpha<ALPHA>/{init,rl,joint}. Used by demo/trbert.sh (the bench suite,
# scripts/bench/trbert.py, runs the recipe-scale stages itself);
# every step is cached (delete its folder, or FORCE=1, to rerun it).
#   bash scripts/trbert/demo-stages.sh 1.0
#
# Demo scale (CPU, 2 cores) differs from the original recipe (3 epochs, lr 3e-5, batch 32):
# each stage runs a fixed number of updates on random training batches, the policies learn with
# a larger learning rate while the encoder is frozen (init, rl), the joint stage uses 4 rollouts,
# residual scores are computed online from the frozen fine-tuned model (only for the batches that
# need them), the rollouts share the layers below the first reduction point
# (--trbert-share-prefix) and attention dropout is off (its CPU kernel costs ~10x the attention).
# Knobs (env): DATA (data-bin/reviews) BASELINE (checkpoints/baseline-<data>/checkpoint_best.pt)
#   OUT (checkpoints/trbert-demo/<data>/alpha<ALPHA>) FT_EPOCHS (2)
#   INIT_MAX_UPDATE RL_MAX_UPDATE RL_LR RL_ROLLOUTS JOINT_MAX_UPDATE JOINT_LR
#   JOINT_ROLLOUTS THREADS.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
ALPHA="${1:-${ALPHA:-1.0}}"
THREADS="${THREADS:-2}"
DATA="${DATA:-data-bin/reviews}"
BASELINE="${BASELINE:-checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt}"
BASE_DIR="$(dirname "$BASELINE")"
OUT="${OUT:-checkpoints/trbert-demo/$(basename "$DATA")/alpha$ALPHA}"

bash scripts/models/prepare-minilm.sh >/dev/null
[[ "$DATA" != data-bin/reviews ]] || bash scripts/data/prepare-reviews.sh >/dev/null

# 1. baseline: stock fairseq fine-tuning (2 epochs, batch 16, lr 1e-4) of the converted MiniLM, or
#    of BASE_RESTORE (a sentence classifier with the same dictionary and labels, e.g. the sentiment
#    demo's baseline; make demo does this); an interrupted run resumes from its checkpoint_last.pt
if [[ ! -f "$BASE_DIR/result.json" ]]; then
  DATA=$DATA SAVE_DIR=$BASE_DIR RESTORE="${BASE_RESTORE:-}" BATCH=8 UPDATE_FREQ=2 EPOCHS="${FT_EPOCHS:-2}" LR=1e-4 THREADS=$THREADS \
    EXTRA_ARGS="--attention-dropout 0.0 --log-interval 10" bash scripts/models/finetune-baseline.sh
fi

# 2-7. TR-BERT stages (pipeline.sh skips finished ones) and fairseq-validate
DATA=$DATA OUT="$OUT" FINETUNED="$BASELINE" SCORES=online THREADS=$THREADS \
  ATTENTION_DROPOUT=0 VALIDATE=0 WARMUP_RATIO=0.1 EXTRA_ARGS="--trbert-share-prefix" \
  INIT=1 INIT_LR="${INIT_LR:-1e-3}" INIT_MAX_UPDATE="${INIT_MAX_UPDATE:-20}" INIT_BATCH=8 INIT_UPDATE_FREQ=1 \
  RL_LR="${RL_LR:-1e-3}" RL_MAX_UPDATE="${RL_MAX_UPDATE:-40}" RL_BATCH=8 RL_UPDATE_FREQ=1 \
  RL_ROLLOUTS="${RL_ROLLOUTS:-8}" RL_ALPHA="$ALPHA" RL_GUIDE_RATE=0.5 \
  JOINT_LR="${JOINT_LR:-2e-5}" JOINT_MAX_UPDATE="${JOINT_MAX_UPDATE:-20}" JOINT_BATCH=4 JOINT_UPDATE_FREQ=1 \
  JOINT_ROLLOUTS="${JOINT_ROLLOUTS:-4}" JOINT_ALPHA="$ALPHA" KD=1 \
  bash scripts/trbert/pipeline.sh
