#!/usr/bin/env bash
# A demo-scale copy of a prepared sentence_prediction folder: the first TRAIN / VALID / TEST examples
# of its (already shuffled) text splits, each cut to MAX_TOKENS WordPiece tokens, binarised with the
# same dictionaries. Cached: a folder made with the same settings is reused.
#
#   bash scripts/demo/subset.sh data-bin/sentiment data-bin/sentiment-demo 2000 400 0
#   MAX_TOKENS=254 bash scripts/demo/subset.sh data-bin/reviews data-bin/reviews-demo 240 60 100
#
# A count of 0 keeps the whole split.
source "$(dirname "$0")/../lib/encoder.sh"
SRC="${1:?usage: subset.sh SRC DEST TRAIN VALID TEST}"
DEST="${2:?usage: subset.sh SRC DEST TRAIN VALID TEST}"
declare -A COUNT=([train]="${3:?}" [valid]="${4:?}" [test]="${5:?}")
MAX_TOKENS="${MAX_TOKENS:-0}"
SETTINGS="src=$SRC train=${COUNT[train]} valid=${COUNT[valid]} test=${COUNT[test]} max_tokens=$MAX_TOKENS"

if [[ -f "$DEST/settings.txt" && "$(cat "$DEST/settings.txt")" == "$SETTINGS" && -f "$DEST/label/test.idx" ]]; then
  echo "demo-subset: $DEST is ready (cached)"
  exit 0
fi
[[ -f "$SRC/text/label.dict.txt" ]] || { echo "error: $SRC/text/ is missing; prepare $SRC first" >&2; exit 2; }
rm -rf "$DEST"
mkdir -p "$DEST/text"
cp "$SRC/text/label.dict.txt" "$DEST/text/"
for split in train valid test; do
  n="${COUNT[$split]}"
  take() { if [[ "$n" == 0 ]]; then cat "$1"; else head -n "$n" "$1"; fi; }
  if [[ "$MAX_TOKENS" == 0 ]]; then
    take "$SRC/text/$split.input0" > "$DEST/text/$split.input0"
  else  # the text is space-separated WordPiece tokens: cut each example to its first MAX_TOKENS
    take "$SRC/text/$split.input0" | cut -d' ' -f"1-$MAX_TOKENS" > "$DEST/text/$split.input0"
  fi
  take "$SRC/text/$split.label" > "$DEST/text/$split.label"
done
binarise "$DEST/text" "$DEST"
echo "$SETTINGS" > "$DEST/settings.txt"
cut_note=""
[[ "$MAX_TOKENS" != 0 ]] && cut_note=" (at most $MAX_TOKENS tokens each)"
echo "demo-subset: $DEST: train $(wc -l < "$DEST/text/train.label"), valid $(wc -l < "$DEST/text/valid.label")," \
     "test $(wc -l < "$DEST/text/test.label") examples$cut_note"
