#!/usr/bin/env bash
# fairseq's RoBERTa GLUE recipe (examples/roberta/preprocess_GLUE_tasks.sh) for one task, for users
# with internet. It needs the GLUE data and, for BPE=gpt2, the GPT-2 BPE files and roberta.base's
# dictionary; none of these comes from a package registry, so this cannot run offline (it stops
# early with an explanation). The embedded offline data are prepare-sentiment.sh / prepare-reviews.sh.
#
#   bash scripts/data/prepare-glue.sh SST-2            # GPT-2 BPE + roberta.base dict (fine-tune roberta.base)
#   BPE=wordpiece bash scripts/data/prepare-glue.sh RTE # MiniLM WordPiece + checkpoints/minilm/dict.txt
#
# TASK: CoLA SST-2 MRPC QQP STS-B MNLI QNLI RTE. Output: data-bin/glue/TASK-bin (gpt2) or
# data-bin/glue/TASK-wordpiece-bin, in the sentence_prediction layout (input0/, input1/ for pairs,
# label/; STS-B: label/{train,valid}.label, scores scaled to [0, 1] as in fairseq).
# Env: GLUE_DIR (raw GLUE folders, default .cache/glue_data; downloaded if missing), BPE (gpt2 |
# wordpiece), OUT, WORKERS (default 2).
source "$(dirname "$0")/../lib/encoder.sh"

TASKS="CoLA SST-2 MRPC QQP STS-B MNLI QNLI RTE"
if [[ $# -ne 1 ]]; then
  echo "usage: $0 TASK   (TASK one of: $TASKS)" >&2
  exit 2
fi
TASK="$1"
if [[ " $TASKS " != *" $TASK "* ]]; then
  echo "error: unknown GLUE task '$TASK' (one of: $TASKS)" >&2
  exit 2
fi
BPE="${BPE:-gpt2}"
if [[ "$BPE" != gpt2 && "$BPE" != wordpiece ]]; then
  echo "error: BPE must be gpt2 or wordpiece, not '$BPE'" >&2
  exit 2
fi
GLUE_DIR="${GLUE_DIR:-$REPO/.cache/glue_data}"
GPT2_DIR="$REPO/.cache/gpt2_bpe"
WORKERS="${WORKERS:-2}"
if [[ "$BPE" == gpt2 ]]; then
  OUT="${OUT:-data-bin/glue/$TASK-bin}"
else
  OUT="${OUT:-data-bin/glue/$TASK-wordpiece-bin}"
fi

GLUE_SCRIPT_URL="https://gist.githubusercontent.com/W4ngatang/60c2bdb54d156a41194446737ce03e2e/raw/17b8dd0d724281ed7c3b2aeeda662b92809aadd5/download_glue_data.py"
GPT2_URL="https://dl.fbaipublicfiles.com/fairseq/gpt2_bpe"

# download URL DEST: cached download with a clear error when offline
download() {
  local url="$1" dest="$2"
  [[ -s "$dest" ]] && return 0
  mkdir -p "$(dirname "$dest")"
  python - "$url" "$dest" <<'EOF' || exit 1
import sys, urllib.request
url, dest = sys.argv[1], sys.argv[2]
try:
    with urllib.request.urlopen(url, timeout=30) as r, open(dest + ".part", "wb") as f:
        f.write(r.read())
except OSError as e:
    sys.exit(f"error: cannot download {url} ({e}).\nprepare-glue.sh needs internet for the GLUE "
             "data and GPT-2 BPE files; to run offline, put the raw GLUE task folders under "
             "GLUE_DIR and encoder.json, vocab.bpe, dict.txt under .cache/gpt2_bpe/.")
import os
os.replace(dest + ".part", dest)
EOF
}

# 1. raw GLUE data (the GLUE download script from fairseq's README.glue.md)
if [[ ! -d "$GLUE_DIR/$TASK" ]]; then
  download "$GLUE_SCRIPT_URL" "$REPO/.cache/download_glue_data.py"
  python "$REPO/.cache/download_glue_data.py" --data_dir "$GLUE_DIR" --tasks "$TASK" \
    || { echo "error: downloading GLUE $TASK failed" >&2; exit 1; }
fi
# 2. tokeniser files
if [[ "$BPE" == gpt2 ]]; then
  for f in encoder.json vocab.bpe dict.txt; do download "$GPT2_URL/$f" "$GPT2_DIR/$f"; done
  SRCDICT="$GPT2_DIR/dict.txt"
else
  bash scripts/models/prepare-minilm.sh
  SRCDICT="$MINILM_DIR/dict.txt"
fi

# 3. columns per task, exactly as fairseq's recipe
SPLITS="train dev test"
INPUT_COUNT=2
case "$TASK" in
  QQP)   INPUT_COLUMNS=(4 5); TEST_INPUT_COLUMNS=(2 3); LABEL_COLUMN=6 ;;
  MNLI)  SPLITS="train dev_matched dev_mismatched test_matched test_mismatched"
         INPUT_COLUMNS=(9 10); TEST_INPUT_COLUMNS=(9 10); DEV_LABEL_COLUMN=16; LABEL_COLUMN=12 ;;
  QNLI)  INPUT_COLUMNS=(2 3); TEST_INPUT_COLUMNS=(2 3); LABEL_COLUMN=4 ;;
  MRPC)  INPUT_COLUMNS=(4 5); TEST_INPUT_COLUMNS=(4 5); LABEL_COLUMN=1 ;;
  RTE)   INPUT_COLUMNS=(2 3); TEST_INPUT_COLUMNS=(2 3); LABEL_COLUMN=4 ;;
  STS-B) INPUT_COLUMNS=(8 9); TEST_INPUT_COLUMNS=(8 9); LABEL_COLUMN=10 ;;
  SST-2) INPUT_COLUMNS=(1); TEST_INPUT_COLUMNS=(2); LABEL_COLUMN=2; INPUT_COUNT=1 ;;
  CoLA)  INPUT_COLUMNS=(4); TEST_INPUT_COLUMNS=(2); LABEL_COLUMN=2; INPUT_COUNT=1 ;;
esac

RAW="$GLUE_DIR/$TASK"
WORK="$REPO/.cache/glue-work/$TASK-$BPE"
rm -rf "$WORK"
mkdir -p "$WORK"
for SPLIT in $SPLITS; do
  if [[ ! -f "$RAW/$SPLIT.tsv" ]]; then
    echo "error: $RAW/$SPLIT.tsv not found (incomplete GLUE download?)" >&2
    exit 1
  fi
  # strip the header (CoLA's train/dev have none); drop malformed QQP lines
  if [[ "$TASK" == CoLA && "$SPLIT" != test ]]; then
    cp "$RAW/$SPLIT.tsv" "$WORK/$SPLIT.tsv"
  else
    tail -n +2 "$RAW/$SPLIT.tsv" > "$WORK/$SPLIT.tsv"
  fi
  if [[ "$TASK" == QQP && "$SPLIT" != test ]]; then
    awk -F '\t' -v NUM_FIELDS=6 'NF==NUM_FIELDS{print}{}' "$WORK/$SPLIT.tsv" > "$WORK/$SPLIT.tsv.tmp"
    mv "$WORK/$SPLIT.tsv.tmp" "$WORK/$SPLIT.tsv"
  fi
  for INPUT_TYPE in $(seq 0 $((INPUT_COUNT - 1))); do
    if [[ "$SPLIT" != test* ]]; then COL=${INPUT_COLUMNS[$INPUT_TYPE]}; else COL=${TEST_INPUT_COLUMNS[$INPUT_TYPE]}; fi
    cut -f"$COL" "$WORK/$SPLIT.tsv" > "$WORK/$SPLIT.raw.input$INPUT_TYPE"
  done
  if [[ "$SPLIT" != test* ]]; then
    if [[ "$TASK" == MNLI && "$SPLIT" != train ]]; then
      cut -f"$DEV_LABEL_COLUMN" "$WORK/$SPLIT.tsv" > "$WORK/$SPLIT.label"
    else
      cut -f"$LABEL_COLUMN" "$WORK/$SPLIT.tsv" > "$WORK/$SPLIT.label"
    fi
  fi
  # 4. sub-word encoding
  for INPUT_TYPE in $(seq 0 $((INPUT_COUNT - 1))); do
    LANG="input$INPUT_TYPE"
    echo "encoding $SPLIT/$LANG ($BPE)"
    if [[ "$BPE" == gpt2 ]]; then
      python -m fairseq.examples.roberta.multiprocessing_bpe_encoder \
        --encoder-json "$GPT2_DIR/encoder.json" --vocab-bpe "$GPT2_DIR/vocab.bpe" \
        --inputs "$WORK/$SPLIT.raw.$LANG" --outputs "$WORK/$SPLIT.$LANG" \
        --workers "$WORKERS" --keep-empty
    else
      python scripts/data/sentence_data.py tokenize --vocab "$MINILM_DIR/vocab.txt" \
        --input "$WORK/$SPLIT.raw.$LANG" --output "$WORK/$SPLIT.$LANG"
    fi
  done
done

# 5. binarise (dev is fairseq's "valid"; MNLI has two dev and two test sets)
DEVPREF="$WORK/dev.LANG"
TESTPREF="$WORK/test.LANG"
if [[ "$TASK" == MNLI ]]; then
  DEVPREF="$WORK/dev_matched.LANG,$WORK/dev_mismatched.LANG"
  TESTPREF="$WORK/test_matched.LANG,$WORK/test_mismatched.LANG"
fi
rm -rf "$OUT"
for INPUT_TYPE in $(seq 0 $((INPUT_COUNT - 1))); do
  LANG="input$INPUT_TYPE"
  fairseq-preprocess --only-source --trainpref "$WORK/train.$LANG" \
    --validpref "${DEVPREF//LANG/$LANG}" --testpref "${TESTPREF//LANG/$LANG}" \
    --destdir "$OUT/$LANG" --workers "$WORKERS" --srcdict "$SRCDICT"
done
if [[ "$TASK" != STS-B ]]; then
  fairseq-preprocess --only-source --trainpref "$WORK/train.label" \
    --validpref "${DEVPREF//LANG/label}" --destdir "$OUT/label" --workers "$WORKERS"
else
  # regression targets scaled to [0, 1]
  mkdir -p "$OUT/label"
  awk '{print $1 / 5.0 }' "$WORK/train.label" > "$OUT/label/train.label"
  awk '{print $1 / 5.0 }' "$WORK/dev.label" > "$OUT/label/valid.label"
fi
echo "prepare-glue: $TASK ready in $OUT"
