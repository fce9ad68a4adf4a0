#!/usr/bin/env bash
# Baseline fine-tuning of the converted MiniLM encoder on a sentence_prediction data folder with
# the stock fairseq tools, then fairseq-validate on the test split.
#
#   bash scripts/models/finetune-baseline.sh                    # data-bin/sentiment, defaults below
#   DATA=data-bin/reviews BATCH=8 UPDATE_FREQ=4 EPOCHS=3 bash scripts/models/finetune-baseline.sh
#
# Defaults (MiniLM, CPU): Adam (0.9, 0.98), eps 1e-6, weight decay 0.01, LR=5e-5 with linear
# warm-up over WARMUP_RATIO=0.06 of the updates then linear decay to 0 (fairseq's RoBERTa GLUE
# recipe, with a higher LR for the small encoder), BATCH=32 sentences, EPOCHS=3, dropout 0.1,
# SEED=1. The total update count for the schedule is derived from the training-set size.
# Every knob is an environment variable:
#   DATA SAVE_DIR RESTORE ARCH LR BATCH UPDATE_FREQ EPOCHS WARMUP_RATIO WEIGHT_DECAY DROPOUT
#   NUM_CLASSES (read from DATA/label; if set it must agree) MAX_POSITIONS SEED THREADS VALID_BATCH EXTRA_ARGS (appended to fairseq-train)
#   RESUME (1: continue from SAVE_DIR/checkpoint_last.pt when there is one; 0: start over)
# Output: SAVE_DIR/checkpoint_best.pt (best dev accuracy), train.log, test.log, result.json.
source "$(dirname "$0")/../lib/encoder.sh"

DATA="${DATA:-data-bin/sentiment}"
SAVE_DIR="${SAVE_DIR:-checkpoints/baseline-$(basename "$DATA")}"
RESTORE="${RESTORE:-$MINILM_DIR/model.pt}"
ARCH="${ARCH:-prunable_roberta_minilm}"
LR="${LR:-5e-5}"
BATCH="${BATCH:-32}"
UPDATE_FREQ="${UPDATE_FREQ:-1}"
EPOCHS="${EPOCHS:-3}"
WARMUP_RATIO="${WARMUP_RATIO:-0.06}"
WEIGHT_DECAY="${WEIGHT_DECAY:-0.01}"
DROPOUT="${DROPOUT:-0.1}"
NUM_CLASSES="${NUM_CLASSES:-}"  # empty: read from DATA/label (classes, or regression)
MAX_POSITIONS="${MAX_POSITIONS:-512}"
SEED="${SEED:-1}"
THREADS="${THREADS:-2}"
VALID_BATCH="${VALID_BATCH:-$BATCH}"
EXTRA_ARGS="${EXTRA_ARGS:-}"

for f in "$DATA/input0/dict.txt" "$DATA/input0/train.idx" "$DATA/input0/valid.idx"; do
  if [[ ! -f "$f" ]]; then
    echo "error: $DATA is not a sentence_prediction data folder ($f missing);" \
         "run scripts/data/prepare-own-data.sh, scripts/data/prepare-sentiment.sh or scripts/data/prepare-reviews.sh" >&2
    exit 1
  fi
done
resolve_labels "$DATA"  # NUM_CLASSES, REGRESSION, LABEL_ARGS; a NUM_CLASSES that disagrees stops here
if [[ "$REGRESSION" == 1 ]]; then
  BEST_ARGS=(--best-checkpoint-metric loss)
else
  BEST_ARGS=(--best-checkpoint-metric accuracy --maximize-best-checkpoint-metric)
fi
if [[ ! -f "$RESTORE" ]]; then
  echo "error: pretrained checkpoint $RESTORE not found; run scripts/models/prepare-minilm.sh" >&2
  exit 1
fi
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"

# number of training examples, read from the mmap index header (no fairseq import: fast start)
N_TRAIN=$(python - "$DATA/input0/train.idx" <<'EOF'
import struct, sys
with open(sys.argv[1], "rb") as f:
    head = f.read(26)
if head[:9] != b"MMIDIDX\x00\x00":
    sys.exit(f"error: {sys.argv[1]} is not a fairseq mmap index (binarise with fairseq-preprocess)")
print(struct.unpack("<Q", head[18:26])[0])
EOF
)
UPDATES_PER_EPOCH=$(( (N_TRAIN + BATCH * UPDATE_FREQ - 1) / (BATCH * UPDATE_FREQ) ))
TOTAL_UPDATES=$(( UPDATES_PER_EPOCH * EPOCHS ))
WARMUP_UPDATES=$(python -c "print(int($TOTAL_UPDATES * $WARMUP_RATIO))")
echo "finetune-baseline: $N_TRAIN training examples, $TOTAL_UPDATES updates ($EPOCHS epochs), warm-up $WARMUP_UPDATES, lr $LR"

mkdir -p "$SAVE_DIR"
# an interrupted run resumes from its checkpoint_last.pt (optimizer, schedule and data position
# included); a fresh one starts from the pretrained encoder with everything reset
if [[ -f "$SAVE_DIR/checkpoint_last.pt" && "${RESUME:-1}" == 1 ]]; then
  echo "finetune-baseline: resuming from $SAVE_DIR/checkpoint_last.pt (RESUME=0 starts over)"
  START_ARGS=(--restore-file "$SAVE_DIR/checkpoint_last.pt")
  TEE_ARGS=(-a)
else
  START_ARGS=(--restore-file "$RESTORE" --reset-optimizer --reset-dataloader --reset-meters --reset-lr-scheduler)
  TEE_ARGS=()
fi
START=$(date +%s)
# shellcheck disable=SC2086  # EXTRA_ARGS is a list of flags
fairseq-train "$DATA" --user-dir user_dir \
  --task sentence_prediction --arch "$ARCH" \
  "${START_ARGS[@]}" \
  --init-token 0 --separator-token 2 "${LABEL_ARGS[@]}" --max-positions "$MAX_POSITIONS" \
  --criterion sentence_prediction --classification-head-name sentence_classification_head \
  --optimizer adam --adam-betas "(0.9,0.98)" --adam-eps 1e-06 --weight-decay "$WEIGHT_DECAY" --clip-norm 0.0 \
  --lr-scheduler polynomial_decay --lr "$LR" --total-num-update "$TOTAL_UPDATES" --warmup-updates "$WARMUP_UPDATES" \
  --batch-size "$BATCH" --update-freq "$UPDATE_FREQ" --max-epoch "$EPOCHS" --required-batch-size-multiple 1 \
  --dropout "$DROPOUT" --attention-dropout "$DROPOUT" --seed "$SEED" --num-workers 0 \
  "${BEST_ARGS[@]}" --no-epoch-checkpoints \
  --save-dir "$SAVE_DIR" --log-format simple --log-interval 50 $EXTRA_ARGS \
  2>&1 | tee "${TEE_ARGS[@]}" "$SAVE_DIR/train.log"
TRAIN_S=$(( $(date +%s) - START ))

# --required-batch-size-multiple 1: with fairseq-validate's default (8) the last, partial batch of
# a split is dropped and a few examples go unscored
fairseq-validate "$DATA" --user-dir user_dir --task sentence_prediction \
  --criterion sentence_prediction --path "$SAVE_DIR/checkpoint_best.pt" --valid-subset "$(eval_subsets "$DATA")" --batch-size "$VALID_BATCH" \
  --required-batch-size-multiple 1 --num-workers 0 --log-format simple 2>&1 | tee "$SAVE_DIR/test.log"

python - "$SAVE_DIR" "$TRAIN_S" <<'EOF'
import json, re, sys
save_dir, train_s = sys.argv[1], int(sys.argv[2])
acc, loss = {}, {}
for line in open(f"{save_dir}/test.log"):
    m = re.search(r"valid on '(\w+)' subset .*?accuracy ([0-9.]+)", line)
    if m:
        acc[m.group(1)] = float(m.group(2))
    m = re.search(r"valid on '(\w+)' subset \| loss ([0-9.]+)", line)
    if m:  # regression data has no accuracy
        loss[m.group(1)] = float(m.group(2))
result = {"dev_accuracy": acc.get("valid"), "test_accuracy": acc.get("test"),
          "dev_loss": loss.get("valid"), "test_loss": loss.get("test"), "train_seconds": train_s}
json.dump(result, open(f"{save_dir}/result.json", "w"), indent=1)
print("finetune-baseline:", json.dumps(result))
EOF
