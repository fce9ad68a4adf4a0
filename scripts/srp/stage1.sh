#!/usr/bin/env bash
# SRP two-stage pruning, stage 1: embedding dims only (then fine-tuning in the same run).
#   PRETRAINED defaults to the base model's best checkpoint. Env: see scripts/srp/stage.sh.
source "$(dirname "$0")/lib.sh"
export STAGE=1
export PRETRAINED="${PRETRAINED:-$CKPT_ROOT/base/checkpoint_best.pt}"
exec bash "$(dirname "$0")/stage.sh"
