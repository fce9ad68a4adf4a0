#!/usr/bin/env bash
# The embedded German->English data set, for machines without internet access to the usual
# corpora: example sentences of Debian's `trans-de-en` dictionary (GPL-2+), Moses-tokenised with
# sacremoses, lowercased, joint sentencepiece BPE in subword-nmt's "@@ " notation (so BLEU is
# computed with `fairseq-generate --remove-bpe`), binarised with a joined dictionary.
#
#   bash scripts/data/prepare-de-en-offline.sh       # -> data-bin/de-en-offline
#
# Environment (relative paths are taken from the repository root):
#   DE_EN_OUT     output folder                     (data-bin/de-en-offline)
#   DE_EN_CACHE   intermediate text, BPE model      (.cache/de-en-offline)
#   DOWNLOAD_DIR  where the .deb is kept            (.cache/downloads)
#   DE_EN_DICT    a local dictionary file in the trans-de-en format: no download
#   DE_EN_SEED (1)  DE_EN_VALID (1000)  DE_EN_TEST (1000)  DE_EN_VOCAB (4000)  DE_EN_WORKERS (nproc)
#   PYTHON        interpreter with sacremoses, sentencepiece and fairseq (.venv/bin/python)
# A second run with the same settings finds the stamp in the output folder and does nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

OUT=${DE_EN_OUT:-data-bin/de-en-offline}
CACHE=${DE_EN_CACHE:-.cache/de-en-offline}
DOWNLOADS=${DOWNLOAD_DIR:-.cache/downloads}
SEED=${DE_EN_SEED:-1}
N_VALID=${DE_EN_VALID:-1000}
N_TEST=${DE_EN_TEST:-1000}
VOCAB=${DE_EN_VOCAB:-4000}
WORKERS=${DE_EN_WORKERS:-$(nproc)}
DICT=${DE_EN_DICT:-}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# Bump when the processing changes, so that existing outputs are rebuilt.
FORMAT=1

say() { echo "prepare-de-en-offline: $*"; }
die() { echo "prepare-de-en-offline: error: $*" >&2; exit 1; }

# ---- up to date? The stamp records everything the output depends on.
if [[ -n "$DICT" ]]; then
    [[ -f "$DICT" ]] || die "DE_EN_DICT=$DICT is not a file"
    source_id="file:$(sha256sum "$DICT" | cut -d' ' -f1)"
else
    source_id="debian:trans-de-en"
fi
SIG="format=$FORMAT source=$source_id seed=$SEED valid=$N_VALID test=$N_TEST vocab=$VOCAB"
up_to_date() { [[ -f "$OUT/.stamp" && "$(cat "$OUT/.stamp")" == "$SIG" ]]; }
if up_to_date; then
    say "$OUT is up to date ($SIG); nothing to do"
    exit 0
fi
# One preparation at a time per output folder (a demo and a benchmark may start together); the
# second one waits, then finds the stamp.
mkdir -p "$(dirname "$OUT")"
exec 9>"$(dirname "$OUT")/.$(basename "$OUT").lock"
flock 9
if up_to_date; then
    say "$OUT was prepared meanwhile; nothing to do"
    exit 0
fi

start=$SECONDS
# find_spec, not import: importing fairseq takes seconds
"$PYTHON" -c "import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))" sacremoses sentencepiece fairseq_cli 2>/dev/null \
    || die "$PYTHON lacks sacremoses, sentencepiece or fairseq: run 'make install' first"

# ---- the dictionary: a local file, or the Debian package (downloaded once, kept in DOWNLOADS)
if [[ -z "$DICT" ]]; then
    mkdir -p "$DOWNLOADS"
    deb=$(ls "$DOWNLOADS"/trans-de-en_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -z "$deb" ]]; then
        say "downloading the Debian package trans-de-en into $DOWNLOADS"
        # as root, apt would otherwise try to drop to the _apt user, who cannot write here
        apt_opts=()
        [[ $EUID -eq 0 ]] && apt_opts=(-o APT::Sandbox::User=root)
        fetch() { (cd "$DOWNLOADS" && { apt-get "${apt_opts[@]}" download trans-de-en \
                                       || apt "${apt_opts[@]}" download trans-de-en; }); }
        if ! fetch; then
            # a fresh machine may have no package lists yet; only root can fetch them
            [[ $EUID -eq 0 ]] && apt-get update -qq && fetch \
                || die "could not download trans-de-en with apt (no Debian/Ubuntu package" \
                       "source?). Download the .deb by hand into $DOWNLOADS, or point" \
                       "DE_EN_DICT at the extracted usr/share/trans/de-en"
        fi
        deb=$(ls "$DOWNLOADS"/trans-de-en_*.deb | sort -V | tail -n 1)
    else
        say "using the cached $deb"
    fi
    rm -rf "$CACHE/package"
    mkdir -p "$CACHE/package"
    dpkg -x "$deb" "$CACHE/package" || die "could not unpack $deb"
    DICT=$CACHE/package/usr/share/trans/de-en
    [[ -f "$DICT" ]] || die "$deb has no usr/share/trans/de-en"
fi

# ---- sentence pairs, split, tokenisation, BPE (scripts/data/de_en_offline.py)
say "extracting sentence pairs from $DICT"
mkdir -p "$CACHE"
"$PYTHON" scripts/data/de_en_offline.py --dict "$DICT" --workdir "$CACHE" --seed "$SEED" \
    --valid "$N_VALID" --test "$N_TEST" --vocab "$VOCAB" --workers "$WORKERS"

# ---- binarise into a temporary folder, then swap it in: an interrupted run leaves no stamp
say "binarising into $OUT"
tmp="$OUT.tmp"
rm -rf "$tmp"
if ! "$PYTHON" -m fairseq_cli.preprocess --source-lang de --target-lang en \
        --trainpref "$CACHE/bpe/train" --validpref "$CACHE/bpe/valid" \
        --testpref "$CACHE/bpe/test" --destdir "$tmp" --joined-dictionary \
        --workers "$WORKERS" >"$CACHE/preprocess.log" 2>&1; then
    tail -n 30 "$CACHE/preprocess.log" >&2
    die "fairseq-preprocess failed (log: $CACHE/preprocess.log)"
fi
cp "$CACHE/stats.json" "$CACHE/spm.model" "$tmp/"
rm -rf "$OUT"
mv "$tmp" "$OUT"
echo "$SIG" >"$OUT/.stamp"
say "done in $((SECONDS - start)) s: $OUT (dictionary of $(wc -l <"$OUT/dict.de.txt") entries;" \
    "tokenised and BPE text in $CACHE/{raw,tok,bpe})"
