#!/usr/bin/env bash
# TR-BERT stages 5+6 (--train_both --train_teacher): all parameters train on the task loss averaged
# over K rollouts plus REINFORCE; with KD=1 the task loss and the reward use the soft labels of the
# frozen fine-tuned model (the teacher, run online in eval mode, T = 1).
# Env: INIT_FROM ($OUT/rl/checkpoint_last.pt) TEACHER (FINETUNED) KD (1) ROLLOUTS (8) ALPHA (1.0)
#      GUIDE_RATE (0) SCORES SAVE_DIR ($OUT/joint) and the training knobs of lib.sh.
source "$(dirname "$0")/lib.sh"
SAVE_DIR="${SAVE_DIR:-$OUT/joint}"
INIT_FROM="${INIT_FROM:-$OUT/rl/checkpoint_last.pt}"
TEACHER="${TEACHER:-$FINETUNED}"
extra=()
if [[ "${KD:-1}" == 1 ]]; then extra+=(--trbert-kd --teacher-path "$TEACHER"); fi
if [[ "${GUIDE_RATE:-0}" != 0 ]]; then
  extra+=(--trbert-scores "${SCORES:-$OUT/scores.pt}")
  [[ "${SCORES:-}" == online && "${KD:-1}" != 1 ]] && extra+=(--teacher-path "$TEACHER")
fi
trbert_train joint "$SAVE_DIR" "$INIT_FROM" --trbert-rollouts "${ROLLOUTS:-8}" --alpha "${ALPHA:-1.0}" \
  --guide-rate "${GUIDE_RATE:-0}" "${extra[@]}" ${EXTRA_ARGS:-}
