# Shared by the SRP pipeline scripts (sourced, not run): repository root, the venv on PATH, the
# hyper-parameters of the original's launch (each overridable from the environment), and checks that
# fail before fairseq starts.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
if [[ -x "$REPO/.venv/bin/python" ]]; then
  export PATH="$REPO/.venv/bin:$PATH"
fi

DATA="${DATA:-data-bin/iwslt14.tokenized.de-en}"
ARCH="${ARCH:-srp_iwslt_de_en}"
CKPT_ROOT="${CKPT_ROOT:-checkpoints/srp-$(basename "$DATA")-$ARCH}"
MAX_TOKENS="${MAX_TOKENS:-4096}"
LR="${LR:-5e-4}"                       # base training peak lr; pruning runs use it fixed
WARMUP="${WARMUP:-4000}"
DROPOUT="${DROPOUT:-0.3}"
WEIGHT_DECAY="${WEIGHT_DECAY:-0.0001}"
LABEL_SMOOTHING="${LABEL_SMOOTHING:-0.1}"
RATE="${RATE:-0.2}"                    # --compression-rate: fraction of parameters kept
PERIOD="${PERIOD:-20}"                 # --pruning-period (epochs)
DECREASING="${DECREASING:-sa}"
WARMING_UP="${WARMING_UP:-0}"
PRUNING_ITER="${PRUNING_ITER:-1}"
SCORE_BATCHES="${SCORE_BATCHES:-1}"
PROB_KD="${PROB_KD:-0.7}"
TEMPERATURE="${TEMPERATURE:-10}"
WEIGHTED_LN="${WEIGHTED_LN:-1}"        # 1: --weighted-layernorm (as the original's pruning runs)
EVAL_BLEU="${EVAL_BLEU:-1}"            # 1: BLEU on valid each epoch, best checkpoint by BLEU
EVAL_BLEU_BEAM="${EVAL_BLEU_BEAM:-5}"  # beam of that BLEU (1: greedy, several times cheaper on a CPU)
SEED="${SEED:-1}"
THREADS="${THREADS:-$(nproc)}"
LOG_INTERVAL="${LOG_INTERVAL:-100}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
# stock fairseq picks CUDA when there is one; on a CPU-only machine it must be told
DEVICE_ARGS="${DEVICE_ARGS:-$(python -c 'import torch; print("" if torch.cuda.is_available() else "--cpu")')}"

srp_check_data() {
  if [[ ! -f "$1/dict.de.txt" || ! -f "$1/dict.en.txt" ]]; then
    echo "error: DATA=$1 is not a binarised De-En data set (run scripts/data/prepare-iwslt14.sh or" \
         "scripts/data/prepare-de-en-offline.sh first)" >&2
    exit 2
  fi
}

srp_check_checkpoint() {  # PATH WHAT
  if [[ ! -f "$1" ]]; then
    echo "error: $2 checkpoint $1 does not exist" >&2
    exit 2
  fi
}

# the flags every SRP run repeats (the original's: task, arch, tied output, srp_adam, srp criterion)
srp_common_args() {
  local args=(--user-dir user_dir --task srp_translation --arch "$ARCH" --share-decoder-input-output-embed
              --optimizer srp_adam --adam-betas "(0.9,0.98)" --clip-norm 0.0 --weight-decay "$WEIGHT_DECAY"
              --dropout "$DROPOUT" --criterion srp --label-smoothing "$LABEL_SMOOTHING"
              --prob-kd "$PROB_KD" --T "$TEMPERATURE" --max-tokens "$MAX_TOKENS" --seed "$SEED"
              --num-workers 0 --log-format simple --log-interval "$LOG_INTERVAL" --no-epoch-checkpoints)
  if [[ "$EVAL_BLEU" == 1 ]]; then
    args+=(--eval-bleu --eval-bleu-args "{\"beam\": $EVAL_BLEU_BEAM, \"max_len_a\": 1.2, \"max_len_b\": 10}"
           --eval-bleu-detok moses --eval-bleu-remove-bpe --best-checkpoint-metric bleu
           --maximize-best-checkpoint-metric)
  fi
  printf '%s\n' "${args[@]}"
}

# the pruning flags of stage $1 (0 = single stage), from the environment
srp_prune_args() {
  local args=(--srp --compression-rate "$RATE" --pruning-stage "$1" --pruning-period "$PERIOD"
              --pruning-iter "$PRUNING_ITER" --decreasing "$DECREASING" --warming-up "$WARMING_UP"
              --srp-score-batches "$SCORE_BATCHES" --lr-scheduler fixed --lr "$LR")
  [[ "$WEIGHTED_LN" == 1 ]] && args+=(--weighted-layernorm)
  printf '%s\n' "${args[@]}"
}

# srp_train SAVE_DIR ARGS...: fairseq-train on DATA with the common flags, logged to SAVE_DIR/train.log.
# Rerun into the same SAVE_DIR, a run without --restore-file continues from SAVE_DIR/checkpoint_last.pt
# (fairseq's default; the pruning phase, selection and schedule included) and the log is appended to,
# so it keeps every epoch. finetune.sh, which starts from --restore-file, handles that itself.
srp_train() {
  local save="$1"; shift
  mkdir -p "$save"
  local common=() tee_args=()
  mapfile -t common < <(srp_common_args)
  if [[ -f "$save/checkpoint_last.pt" ]]; then
    echo "srp: $save/checkpoint_last.pt exists: continuing that run"
    tee_args=(-a)
  fi
  # shellcheck disable=SC2086
  fairseq-train "$DATA" "${common[@]}" --save-dir "$save" "$@" $DEVICE_ARGS $EXTRA_ARGS \
    2>&1 | tee "${tee_args[@]}" "$save/train.log"
}
