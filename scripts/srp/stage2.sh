#!/usr/bin/env bash
# SRP two-stage pruning, stage 2: FFN neurons, q·k and v·o dims of the stage-1 model, to the same
# compression rate (re-scored on the already shrunk model).
#   PRETRAINED defaults to stage 1's best checkpoint. Env: see scripts/srp/stage.sh.
source "$(dirname "$0")/lib.sh"
export STAGE=2
export PRETRAINED="${PRETRAINED:-$CKPT_ROOT/stage1/checkpoint_best.pt}"
exec bash "$(dirname "$0")/stage.sh"
