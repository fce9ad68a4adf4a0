#!/usr/bin/env bash
# TR-BERT stage 3 (optional, the original's --train_init): fit the policies to the rank targets of
# the residual scores; the encoder is frozen and every token kept.
# Env: FINETUNED SCORES (a file from scores.sh, or "online") SAVE_DIR ($OUT/init) and the
#      training knobs of lib.sh (LR, BATCH, UPDATE_FREQ, EPOCHS / MAX_UPDATE, ...).
source "$(dirname "$0")/lib.sh"
SCORES="${SCORES:-$OUT/scores.pt}"
SAVE_DIR="${SAVE_DIR:-$OUT/init}"
teacher=()
[[ "$SCORES" == online ]] && teacher=(--teacher-path "$FINETUNED")
trbert_train init "$SAVE_DIR" "$FINETUNED" --trbert-scores "$SCORES" "${teacher[@]}" \
  ${EXTRA_ARGS:-}
