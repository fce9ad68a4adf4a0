#!/usr/bin/env bash
# IWSLT'14 German->English, prepared the way fairseq's examples/translation/prepare-iwslt14.sh
# does it (the data of the SRP paper), with Python stand-ins for the Moses perl scripts:
#   download de-en.tgz; train.tags: drop <url>/<talkid>/<keywords> lines, strip <title> and
#   <description> tags; Moses tokenisation (sacremoses, HTML escaping as tokenizer.perl);
#   clean-corpus-n (1..175 tokens, length ratio <= 1.5); lowercase; dev/test <seg> lines with
#   ’ -> '; valid = every 23rd training line, train = the rest, test = dev2010 + TEDX.dev2012 +
#   tst2010 + tst2011 + tst2012; 10,000 joint BPE merges with subword-nmt learned on train.de +
#   train.en; fairseq-preprocess with separate dictionaries (fairseq's README command, which gives
#   the 8848/6632 dictionaries of the paper).
# Needs internet once (about 20 MB); it cannot run on our offline machines, where
# scripts/data/prepare-de-en-offline.sh is the embedded default.
#
#   bash scripts/data/prepare-iwslt14.sh       # -> data-bin/iwslt14.tokenized.de-en
#
# Environment (relative paths are taken from the repository root):
#   IWSLT14_OUT        output folder                          (data-bin/iwslt14.tokenized.de-en)
#   IWSLT14_CACHE      extracted and intermediate text        (.cache/iwslt14)
#   IWSLT14_URL        where de-en.tgz is fetched from        (fairseq's copy)
#   IWSLT14_TGZ        the archive; if present no download    (.cache/downloads/iwslt14-de-en.tgz)
#   IWSLT14_BPE_TOKENS number of BPE merges                   (10000)
#   IWSLT14_JOINED_DICTIONARY=1  one dictionary for both languages (for --share-all-embeddings)
#   IWSLT14_WORKERS    processes for tokenisation/binarising  (nproc)
#   PYTHON             interpreter with sacremoses, subword-nmt, fairseq (.venv/bin/python)
# A second run with the same settings finds the stamp in the output folder and does nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

OUT=${IWSLT14_OUT:-data-bin/iwslt14.tokenized.de-en}
WORK=${IWSLT14_CACHE:-.cache/iwslt14}
URL=${IWSLT14_URL:-http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz}
TGZ=${IWSLT14_TGZ:-${DOWNLOAD_DIR:-.cache/downloads}/iwslt14-de-en.tgz}
BPE_TOKENS=${IWSLT14_BPE_TOKENS:-10000}
JOINED=${IWSLT14_JOINED_DICTIONARY:-0}
WORKERS=${IWSLT14_WORKERS:-$(nproc)}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
FORMAT=1  # bump when the processing changes, so that existing outputs are rebuilt

src=de
tgt=en
lang=de-en
orig=$WORK/orig
tmp=$WORK/tmp
prep=$WORK/iwslt14.tokenized.de-en  # the text files of fairseq's example folder

say() { echo "prepare-iwslt14: $*"; }
die() { echo "prepare-iwslt14: error: $*" >&2; exit 1; }
tokenise() { "$PYTHON" scripts/data/mt_text.py tokenise --escape --workers "$WORKERS" --lang "$@"; }

SIG="format=$FORMAT bpe=$BPE_TOKENS joined=$JOINED"
up_to_date() { [[ -f "$OUT/.stamp" && "$(cat "$OUT/.stamp")" == "$SIG" ]]; }
if up_to_date; then
    say "$OUT is up to date ($SIG); nothing to do"
    exit 0
fi

# ---- tools first, then the download: both fail before any work is done
# find_spec, not import: importing fairseq takes seconds
"$PYTHON" -c "import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))" sacremoses subword_nmt fairseq_cli 2>/dev/null \
    || die "$PYTHON lacks sacremoses, subword-nmt or fairseq: run 'make install' first"

if [[ ! -s "$TGZ" ]]; then
    say "downloading $URL"
    mkdir -p "$(dirname "$TGZ")"
    if command -v curl >/dev/null; then
        get=(curl -fL --connect-timeout 20 --retry 2 -o "$TGZ.part" "$URL")
    elif command -v wget >/dev/null; then
        get=(wget -q --timeout=20 --tries=3 -O "$TGZ.part" "$URL")
    else
        die "neither curl nor wget is installed"
    fi
    if ! "${get[@]}"; then
        rm -f "$TGZ.part"
        die "could not download $URL (no internet access?). This recipe needs the IWSLT'14" \
            "archive: fetch it elsewhere and put it at $TGZ (or set IWSLT14_TGZ). Without" \
            "internet, use scripts/data/prepare-de-en-offline.sh."
    fi
    mv "$TGZ.part" "$TGZ"
fi
tar -tzf "$TGZ" >/dev/null 2>&1 || die "$TGZ is not a readable .tgz archive; delete it and retry"

rm -rf "$orig" "$tmp" "$prep"
mkdir -p "$orig" "$tmp" "$prep"
tar -xzf "$TGZ" -C "$orig"
[[ -f "$orig/$lang/train.tags.$lang.$src" ]] || die "$TGZ has no $lang/train.tags.$lang.$src"

say "pre-processing train data..."
for l in $src $tgt; do
    # talk metadata lines go; titles and descriptions are kept as text without their tags
    grep -v -e '<url>' -e '<talkid>' -e '<keywords>' "$orig/$lang/train.tags.$lang.$l" \
        | sed -e 's/<title>//g' -e 's/<\/title>//g' \
              -e 's/<description>//g' -e 's/<\/description>//g' \
        | tokenise "$l" >"$tmp/train.tags.$lang.tok.$l"
done
"$PYTHON" scripts/data/mt_text.py clean --ratio 1.5 --min 1 --max 175 \
    "$tmp/train.tags.$lang.tok.$src" "$tmp/train.tags.$lang.tok.$tgt" \
    "$tmp/train.tags.$lang.clean.$src" "$tmp/train.tags.$lang.clean.$tgt"
for l in $src $tgt; do
    "$PYTHON" scripts/data/mt_text.py lower <"$tmp/train.tags.$lang.clean.$l" >"$tmp/train.tags.$lang.$l"
done

say "pre-processing valid/test data..."
for l in $src $tgt; do
    for o in "$orig/$lang"/IWSLT14.TED*."$l".xml; do
        [[ -f "$o" ]] || die "$TGZ has no IWSLT14.TED*.$l.xml dev/test files"
        f=$tmp/$(basename "${o%.xml}")
        grep '<seg id' "$o" \
            | sed -e 's/<seg id="[0-9]*">\s*//g' -e 's/\s*<\/seg>\s*//g' -e "s/’/'/g" \
            | tokenise "$l" --lower >"$f"
    done
done

say "creating train, valid, test..."
for l in $src $tgt; do
    awk 'NR % 23 == 0' "$tmp/train.tags.$lang.$l" >"$tmp/valid.$l"
    awk 'NR % 23 != 0' "$tmp/train.tags.$lang.$l" >"$tmp/train.$l"
    parts=()
    for p in TED.dev2010 TEDX.dev2012 TED.tst2010 TED.tst2011 TED.tst2012; do
        part=$tmp/IWSLT14.$p.$lang.$l
        [[ -f "$part" ]] || die "$TGZ has no IWSLT14.$p.$lang.$l.xml"
        parts+=("$part")
    done
    cat "${parts[@]}" >"$tmp/test.$l"
done

say "learning $BPE_TOKENS BPE merges on train.$src + train.$tgt..."
cat "$tmp/train.$src" "$tmp/train.$tgt" >"$tmp/train.en-de"
"$PYTHON" -m subword_nmt.learn_bpe -s "$BPE_TOKENS" <"$tmp/train.en-de" >"$prep/code"
for l in $src $tgt; do
    for f in train valid test; do
        "$PYTHON" -m subword_nmt.apply_bpe -c "$prep/code" <"$tmp/$f.$l" >"$prep/$f.$l"
    done
done

say "binarising into $OUT"
joined=()
[[ "$JOINED" == 1 ]] && joined=(--joined-dictionary)
staging="$OUT.tmp"
rm -rf "$staging"
if ! "$PYTHON" -m fairseq_cli.preprocess --source-lang $src --target-lang $tgt \
        --trainpref "$prep/train" --validpref "$prep/valid" --testpref "$prep/test" \
        --destdir "$staging" --workers "$WORKERS" "${joined[@]}" >"$WORK/preprocess.log" 2>&1; then
    tail -n 30 "$WORK/preprocess.log" >&2
    die "fairseq-preprocess failed (log: $WORK/preprocess.log)"
fi
cp "$prep/code" "$staging/bpe.code"
rm -rf "$OUT"
mv "$staging" "$OUT"
echo "$SIG" >"$OUT/.stamp"
say "done: $OUT (train $(wc -l <"$prep/train.$src"), valid $(wc -l <"$prep/valid.$src")," \
    "test $(wc -l <"$prep/test.$src") pairs; dictionaries $src $(wc -l <"$OUT/dict.$src.txt")," \
    "$tgt $(wc -l <"$OUT/dict.$tgt.txt") entries; BPE text in $prep)"
