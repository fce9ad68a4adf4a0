#!/usr/bin/env bash
# TR-BERT stage 4 (--train_rl): policy-only REINFORCE with K rollouts, length penalty ALPHA, and
# imitation of the top-K residual-score tokens for the first GUIDE_RATE of the updates.
# Env: INIT_FROM (default $OUT/init/checkpoint_last.pt if it exists, else FINETUNED) SCORES
#      ($OUT/scores.pt, or "online") ROLLOUTS (8) ALPHA (1.0) GUIDE_RATE (0.5) SAVE_DIR ($OUT/rl)
#      and the training knobs of lib.sh.
source "$(dirname "$0")/lib.sh"
SCORES="${SCORES:-$OUT/scores.pt}"
SAVE_DIR="${SAVE_DIR:-$OUT/rl}"
if [[ -z "${INIT_FROM:-}" ]]; then
  INIT_FROM="$FINETUNED"
  [[ -f "$OUT/init/checkpoint_last.pt" ]] && INIT_FROM="$OUT/init/checkpoint_last.pt"
fi
scores=()
[[ "${GUIDE_RATE:-0.5}" != 0 ]] && scores=(--trbert-scores "$SCORES")
[[ "$SCORES" == online ]] && scores+=(--teacher-path "$FINETUNED")
trbert_train rl "$SAVE_DIR" "$INIT_FROM" --trbert-rollouts "${ROLLOUTS:-8}" --alpha "${ALPHA:-1.0}" \
  --guide-rate "${GUIDE_RATE:-0.5}" "${scores[@]}" ${EXTRA_ARGS:-}
