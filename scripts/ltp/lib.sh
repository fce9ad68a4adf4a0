# Shared by the LTP pipeline scripts (sourced, not run): repository root and venv (../lib/encoder.sh),
# input checks that fail before fairseq starts, the task flags every stage repeats, and the
# update count the lr schedule needs.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/encoder.sh"

DATA="${DATA:-data-bin/sentiment}"
ARCH="${ARCH:-ltp_roberta_minilm}"
NUM_CLASSES="${NUM_CLASSES:-}"  # empty: read from DATA/label (resolve_labels)
MAX_POSITIONS="${MAX_POSITIONS:-512}"
BATCH="${BATCH:-32}"
VALID_BATCH="${VALID_BATCH:-$BATCH}"
DROPOUT="${DROPOUT:-0.1}"
WEIGHT_DECAY="${WEIGHT_DECAY:-0}"
SEED="${SEED:-1}"
THREADS="${THREADS:-2}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
VALIDATE="${VALIDATE:-1}"
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
# stock fairseq picks CUDA when it is there; on a CPU-only machine it must be told
DEVICE_ARGS="${DEVICE_ARGS:-$(python -c 'import torch; print("" if torch.cuda.is_available() else "--cpu")')}"

ltp_die() { echo "error: $*" >&2; exit 2; }

# ltp_check_data DIR: the sentence_prediction layout that fairseq-preprocess writes; sets
# NUM_CLASSES / REGRESSION / LABEL_ARGS from its label/ folder (resolve_labels)
ltp_check_data() {
  local dir="$1" f
  for f in input0/dict.txt input0/train.idx input0/valid.idx; do
    [[ -f "$dir/$f" ]] || ltp_die "DATA=$dir is not a sentence_prediction data folder ($f missing; expected" \
      "input0/ and label/ with {train,valid}.{bin,idx} and dict.txt, as scripts/data/prepare-own-data.sh makes)"
  done
  resolve_labels "$dir"
}

# ltp_check_checkpoint FILE WHAT: a checkpoint the stage restores from
ltp_check_checkpoint() {
  [[ -f "$1" ]] || ltp_die "$2 checkpoint $1 not found"
}

# the task flags of fairseq's RoBERTa sentence_prediction recipe: <s> first (LTP keeps it), </s> last
ltp_task_args() {
  echo "--user-dir user_dir --task sentence_prediction --init-token 0 --separator-token 2" \
       "${LABEL_ARGS[*]} --max-positions $MAX_POSITIONS"
}

# the dev metric that picks checkpoint_best.pt: accuracy, or the loss for regression data
ltp_best_metric() {
  if [[ "${REGRESSION:-0}" == 1 ]]; then echo "--best-checkpoint-metric loss"
  else echo "--best-checkpoint-metric accuracy --maximize-best-checkpoint-metric"; fi
}

# ltp_train SAVE_DIR RESTORE OPTIMIZER EPOCHS LR [pruning flags...]: the fine-tuning run every stage
# shares (restore a checkpoint with fresh optimizer/schedule, polynomial decay over EPOCHS, keep the
# best dev accuracy); the stage's own flags (prune mode, masking, thresholds) follow.
# An interrupted run (SAVE_DIR/checkpoint_last.pt exists) continues from where it stopped, with its
# optimizer, schedule and data position; RESUME=0 starts over from RESTORE.
ltp_train() {
  local save_dir="$1" restore="$2" optimizer="$3" epochs="$4" lr="$5"; shift 5
  local start_args=(--restore-file "$restore" --reset-optimizer --reset-dataloader --reset-meters --reset-lr-scheduler)
  local tee_args=() shape
  # the restored checkpoint's shape and head name (a stock fairseq roberta_* one included)
  shape="$(restore_flags "$restore" "$DATA")"
  mkdir -p "$save_dir"
  if [[ -f "$save_dir/checkpoint_last.pt" && "${RESUME:-1}" == 1 ]]; then
    echo "ltp: resuming from $save_dir/checkpoint_last.pt (RESUME=0 starts over)"
    start_args=(--restore-file "$save_dir/checkpoint_last.pt")
    tee_args=(-a)
  fi
  # shellcheck disable=SC2046,SC2086
  fairseq-train "$DATA" $(ltp_task_args) --arch "$ARCH" --criterion ltp_sentence_prediction "$@" \
    "${start_args[@]}" \
    --optimizer "$optimizer" --weight-decay "$WEIGHT_DECAY" --clip-norm 0.0 \
    --lr-scheduler polynomial_decay --lr "$lr" --total-num-update "$(ltp_total_updates "$epochs")" \
    --warmup-updates 0 --batch-size "$BATCH" --max-epoch "$epochs" --required-batch-size-multiple 1 \
    --dropout "$DROPOUT" --attention-dropout "$DROPOUT" --seed "$SEED" --num-workers 0 \
    $(ltp_best_metric) --no-epoch-checkpoints $shape \
    --save-dir "$save_dir" --log-format simple --log-interval 50 $DEVICE_ARGS $EXTRA_ARGS \
    2>&1 | tee "${tee_args[@]}" "$save_dir/train.log"
}

# ltp_total_updates EPOCHS: updates of EPOCHS passes over the training split at BATCH
ltp_total_updates() {
  local n
  n=$(python -c "import sys; sys.path.insert(0, '.'); from user_dir.common.data_stats import example_lengths; print(len(example_lengths('$DATA', 'train')))")
  echo $(( (n + BATCH - 1) / BATCH * $1 ))
}

# ltp_validate CHECKPOINT OUT_DIR [fairseq-validate flags...]: dev and test figures of a checkpoint
# (accuracy, relative FLOPs, kept-token ratio per layer) -> OUT_DIR/validate.log, OUT_DIR/result.json
ltp_validate() {
  local ckpt="$1" out="$2"; shift 2
  # shellcheck disable=SC2046
  fairseq-validate "$DATA" --user-dir user_dir --task sentence_prediction --path "$ckpt" \
    --criterion ltp_sentence_prediction --valid-subset "$(eval_subsets "$DATA")" --batch-size "$VALID_BATCH" \
    --required-batch-size-multiple 1 --num-workers 0 --log-format simple $DEVICE_ARGS "$@" 2>&1 | tee "$out/validate.log"
  python -m user_dir.ltp.validate_log "$out/validate.log" --out "$out/result.json"
}
