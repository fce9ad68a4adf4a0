#!/usr/bin/env bash
# Validate a TR-BERT checkpoint with stock fairseq-validate (p >= 0.5, physical gather) and write
# accuracy, relative FLOPs and kept-token ratios per split to JSON.
# Env: CHECKPOINT ($OUT/joint/checkpoint_last.pt) SUBSETS (valid,test) VALID_BATCH (16)
#      RESULT (CHECKPOINT's folder/validate.json)
source "$(dirname "$0")/lib.sh"
CHECKPOINT="${CHECKPOINT:-$OUT/joint/checkpoint_last.pt}"
RESULT="${RESULT:-$(dirname "$CHECKPOINT")/validate.json}"
require_file "$CHECKPOINT" "train it first"
LOG="${RESULT%.json}.log"
# --required-batch-size-multiple 1: fairseq's default (8) silently drops the last examples of a
# split whose size is not a multiple of 8.
# the checkpoint's own criterion scores (trbert: rel_flops, kept_l<k>); --criterion only satisfies
# sentence_prediction's task config, which refers to criterion fields
fairseq-validate "$DATA" --user-dir user_dir --task sentence_prediction --criterion sentence_prediction \
  --path "$CHECKPOINT" \
  --valid-subset "${SUBSETS:-valid,test}" --batch-size "${VALID_BATCH:-16}" --num-workers 0 \
  --required-batch-size-multiple 1 \
  --log-format simple 2>&1 | tee "$LOG"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "error: fairseq-validate failed" >&2; exit 1; }
python -m user_dir.trbert.report "$LOG" --out "$RESULT"
