# Shared by the TR-BERT pipeline scripts (sourced, not run): defaults every stage agrees on and the
# one fairseq-train call all training stages share. Every variable can be set from the environment.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/encoder.sh"   # REPO (cwd), .venv on PATH, MINILM_DIR

DATA="${DATA:-data-bin/reviews}"
ARCH="${ARCH:-trbert_roberta_minilm}"
NUM_CLASSES="${NUM_CLASSES:-}"  # empty: read from DATA/label (resolve_labels)
MAX_POSITIONS="${MAX_POSITIONS:-512}"
REDUCE_LAYERS="${REDUCE_LAYERS:-}"        # empty: the arch's default (1,3 for MiniLM, 1,6 for base)
OUT="${OUT:-checkpoints/trbert}"          # one sub-folder per stage
FINETUNED="${FINETUNED:-checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt}"
SEED="${SEED:-1}"
THREADS="${THREADS:-2}"
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"

require_file() {  # require_file PATH HINT
  if [[ ! -f "$1" ]]; then echo "error: $1 not found; $2" >&2; exit 1; fi
}

num_train_examples() {
  python -c "from user_dir.common.data_stats import example_lengths; print(len(example_lengths('$DATA', 'train')))"
}

# trbert_train STAGE SAVE_DIR INIT_FROM [extra fairseq-train flags...]
# Hyper-parameters from the environment (the original's defaults): LR (3e-5), BATCH (8),
# UPDATE_FREQ (4), EPOCHS (3) or MAX_UPDATE (wins when set), WARMUP_RATIO (0.1), WEIGHT_DECAY (0),
# CLIP_NORM (1.0), DROPOUT (0.1), ATTENTION_DROPOUT (= DROPOUT), VALIDATE (1: validate every epoch),
# SAVE_INTERVAL_UPDATES (0: checkpoint_last.pt only at the end of each epoch; N: also every N updates).
# A fresh run starts from INIT_FROM's weights with a new optimizer, schedule and data order. A rerun
# into a SAVE_DIR that holds checkpoint_last.pt (an interrupted run) continues from it, with its
# optimizer, schedule and data position, and appends to train.log; RESUME=0 starts over from
# INIT_FROM. SAVE_DIR/train_seconds is written when the stage has finished (the pipeline's marker).
trbert_train() {
  local stage="$1" save_dir="$2" init_from="$3"; shift 3
  local lr="${LR:-3e-5}" batch="${BATCH:-8}" update_freq="${UPDATE_FREQ:-4}" epochs="${EPOCHS:-3}"
  local n_train updates warmup
  n_train=$(num_train_examples)
  updates="${MAX_UPDATE:-$(( epochs * ((n_train + batch * update_freq - 1) / (batch * update_freq)) ))}"
  warmup=$(python -c "print(int($updates * ${WARMUP_RATIO:-0.1}))")
  local reduce=() validate=()
  [[ -n "$REDUCE_LAYERS" ]] && reduce=(--trbert-reduce-layers "$REDUCE_LAYERS")
  [[ "${VALIDATE:-1}" == 0 ]] && validate=(--disable-validation)
  require_file "$init_from" "run the previous stage first"
  resolve_labels "$DATA"
  local shape
  # the restored checkpoint's shape and head name (a stock fairseq roberta_* one included)
  shape="$(restore_flags "$init_from" "$DATA")"
  mkdir -p "$save_dir"
  rm -f "$save_dir/train_seconds"
  local start_args=(--restore-file "$init_from" --reset-optimizer --reset-dataloader --reset-meters
                    --reset-lr-scheduler) tee_args=() save_args=()
  if [[ -f "$save_dir/checkpoint_last.pt" && "${RESUME:-1}" == 1 ]]; then
    echo "trbert-$stage: resuming from $save_dir/checkpoint_last.pt (RESUME=0 starts over)"
    start_args=(--restore-file "$save_dir/checkpoint_last.pt")
    tee_args=(-a)
  fi
  if [[ "${SAVE_INTERVAL_UPDATES:-0}" != 0 ]]; then
    save_args=(--save-interval-updates "$SAVE_INTERVAL_UPDATES" --keep-interval-updates 1)
  fi
  echo "trbert-$stage: $updates updates of $batch x $update_freq examples, lr $lr, from $init_from -> $save_dir"
  local start; start=$(date +%s)
  # shellcheck disable=SC2086  # $shape is a list of flags
  fairseq-train "$DATA" --user-dir user_dir --task sentence_prediction "${LABEL_ARGS[@]}" $shape \
    --init-token 0 --separator-token 2 --max-positions "$MAX_POSITIONS" \
    --arch "$ARCH" "${reduce[@]}" --criterion trbert --trbert-stage "$stage" \
    "${start_args[@]}" "${save_args[@]}" \
    --optimizer adam --adam-betas "(0.9,0.999)" --adam-eps 1e-08 --weight-decay "${WEIGHT_DECAY:-0}" \
    --clip-norm "${CLIP_NORM:-1.0}" --lr-scheduler polynomial_decay --lr "$lr" \
    --total-num-update "$updates" --warmup-updates "$warmup" --max-update "$updates" \
    --batch-size "$batch" --update-freq "$update_freq" --required-batch-size-multiple 1 \
    --dropout "${DROPOUT:-0.1}" --attention-dropout "${ATTENTION_DROPOUT:-${DROPOUT:-0.1}}" \
    --seed "$SEED" --num-workers 0 --no-epoch-checkpoints --best-checkpoint-metric loss \
    "${validate[@]}" --save-dir "$save_dir" --log-format simple --log-interval "${LOG_INTERVAL:-10}" \
    "$@" 2>&1 | tee "${tee_args[@]}" "$save_dir/train.log"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "error: trbert-$stage training failed" >&2; exit 1; }
  echo "$(( $(date +%s) - start ))" > "$save_dir/train_seconds"
}
