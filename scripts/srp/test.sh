#!/usr/bin/env bash
# SRP test: BLEU of a checkpoint on the test set with stock fairseq-generate (the original's
# --beam 5 --batch-size 128 --remove-bpe), plus its parameters and FLOPs per sentence.
#
#   CKPT=.../stage2/checkpoint_best.pt bash scripts/srp/test.sh
#
# Env (defaults): CKPT ($CKPT_ROOT/stage2/checkpoint_best.pt) SUBSET (test) BEAM (5) BATCH (128)
#   SCORING (sacrebleu; "bleu" for fairseq's tokenised BLEU) OUT (<ckpt dir>/generate-$SUBSET.txt; its
#   log goes to $OUT.log). Prints the generate wall time, the BLEU line and the size report (JSON).
source "$(dirname "$0")/lib.sh"
CKPT="${CKPT:-$CKPT_ROOT/stage2/checkpoint_best.pt}"
SUBSET="${SUBSET:-test}"
BEAM="${BEAM:-5}"
BATCH="${BATCH:-128}"
SCORING="${SCORING:-sacrebleu}"
OUT="${OUT:-$(dirname "$CKPT")/generate-$SUBSET.txt}"
srp_check_data "$DATA"
srp_check_checkpoint "$CKPT" "CKPT"
t0=$(date +%s.%N)
# shellcheck disable=SC2086
fairseq-generate "$DATA" --user-dir user_dir --path "$CKPT" --gen-subset "$SUBSET" --beam "$BEAM" \
  --batch-size "$BATCH" --remove-bpe --scoring "$SCORING" $DEVICE_ARGS > "$OUT" 2> "$OUT.log" \
  || { cat "$OUT.log" >&2; exit 1; }
t1=$(date +%s.%N)
echo "generate wall time: $(python -c "print(round($t1 - $t0, 2))") s"
tail -n 1 "$OUT"
python -m user_dir.srp.report "$CKPT" --data "$DATA" --subset "$SUBSET" 2>> "$OUT.log"
