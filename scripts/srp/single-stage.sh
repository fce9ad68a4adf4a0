#!/usr/bin/env bash
# SRP single-stage pruning: every group type at once (--pruning-stage 0).
#   PRETRAINED defaults to the base model's best checkpoint. Env: see scripts/srp/stage.sh.
source "$(dirname "$0")/lib.sh"
export STAGE=0
export PRETRAINED="${PRETRAINED:-$CKPT_ROOT/base/checkpoint_best.pt}"
exec bash "$(dirname "$0")/stage.sh"
