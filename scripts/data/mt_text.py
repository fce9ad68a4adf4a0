"""Text tools shared by the translation data scripts: Moses tokenisation (sacremoses), corpus
cleaning as Moses' clean-corpus-n does it, and sentencepiece BPE written in subword-nmt's
``@@ `` notation.

Why the ``@@ `` notation for sentencepiece: fairseq's ``--remove-bpe`` (with no argument) strips
``"@@ "``, which is what the IWSLT'14 recipe (subword-nmt) produces. Writing our sentencepiece
segmentation the same way makes one post-processing flag right for both data sets, and removing
the markers gives back exactly the Moses-tokenised text (the sentencepiece model uses the identity
normalisation so that no character is rewritten).

Command line (used by scripts/data/prepare-iwslt14.sh):
    python scripts/data/mt_text.py tokenise --lang de [--escape] [--lower] [--workers N] < in > out
    python scripts/data/mt_text.py clean SRC_IN TGT_IN SRC_OUT TGT_OUT [--ratio 1.5 --min 1 --max 175]
    python scripts/data/mt_text.py lower < in > out
"""
import argparse
import multiprocessing
import sys

BPE_MARK = "@@"
SPM_SPACE = "\u2581"  # sentencepiece's word-start marker

_tokenisers = {}


def _tokeniser(lang):
    # sacremoses loads its non-breaking-prefix lists on construction: build one per language
    if lang not in _tokenisers:
        from sacremoses import MosesTokenizer

        _tokenisers[lang] = MosesTokenizer(lang=lang)
    return _tokenisers[lang]


def tokenise_line(line, lang, escape=False, lower=False):
    """Moses tokenisation of one line, as tokenizer.perl -l LANG (escape=True is its default)."""
    out = _tokeniser(lang).tokenize(line.strip(), escape=escape, return_str=True)
    out = " ".join(out.split())
    return out.lower() if lower else out


def _tokenise_job(job):
    lines, lang, escape, lower = job
    return [tokenise_line(x, lang, escape, lower) for x in lines]


def tokenise_lines(lines, lang, escape=False, lower=False, workers=1, chunk=2000):
    """Tokenise a list of lines, in `workers` processes for large corpora; order is kept."""
    lines = list(lines)
    if workers <= 1 or len(lines) <= chunk:
        return _tokenise_job((lines, lang, escape, lower))
    jobs = [(lines[i:i + chunk], lang, escape, lower) for i in range(0, len(lines), chunk)]
    with multiprocessing.Pool(workers) as pool:
        return [x for part in pool.imap(_tokenise_job, jobs) for x in part]


def clean_pairs(src, tgt, ratio=1.5, min_len=1, max_len=175):
    """Keep the pairs clean-corpus-n.perl keeps: both sides min..max tokens, length ratio <= ratio.

    Like the perl script, whitespace is collapsed and '|' removed (a Moses factor separator).
    Returns the two kept lists.
    """
    keep_src, keep_tgt = [], []
    for s, t in zip(src, tgt):
        s = " ".join(s.replace("|", "").split())
        t = " ".join(t.replace("|", "").split())
        ns, nt = len(s.split()), len(t.split())
        if not (min_len <= ns <= max_len and min_len <= nt <= max_len):
            continue
        if ns / nt > ratio or nt / ns > ratio:
            continue
        keep_src.append(s)
        keep_tgt.append(t)
    return keep_src, keep_tgt


# ---------------------------------------------------------------- sentencepiece BPE, '@@ ' style
def train_bpe(lines, model_prefix, vocab_size, threads=1):
    """Learn a BPE model with sentencepiece on already tokenised lines; returns the model path.

    hard_vocab_limit=False lets tiny corpora (tests) ask for more pieces than they can have.
    """
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(model_prefix), vocab_size=vocab_size,
        model_type="bpe", character_coverage=1.0, normalization_rule_name="identity",
        hard_vocab_limit=False, num_threads=threads, minloglevel=2,
    )
    return f"{model_prefix}.model"


def pieces_to_bpe(pieces):
    """Turn sentencepiece pieces into subword-nmt notation: 'un@@ believ@@ able'.

    A piece that starts with the marker opens a word; others continue the current one. A lone
    marker piece (sentencepiece emits one when no '▁x' piece exists) only opens a word.
    """
    words = []
    for p in pieces:
        if p.startswith(SPM_SPACE) or not words:
            words.append([])
            p = p[len(SPM_SPACE):] if p.startswith(SPM_SPACE) else p
        if p:
            words[-1].append(p)
    return " ".join(f"{BPE_MARK} ".join(units) for units in words if units)


def remove_bpe(line):
    """What fairseq's --remove-bpe does to a line (subword_nmt post-processing)."""
    return (line + " ").replace(f"{BPE_MARK} ", "").rstrip()


class BpeApplier:
    def __init__(self, model_path):
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(model_path))

    def __call__(self, line):
        return pieces_to_bpe(self.sp.encode(line, out_type=str))


# ---------------------------------------------------------------- command line
def read_lines(stream):
    """Lines of a text stream opened with newline="\n", without their "\n"."""
    lines = stream.read().split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tokenise", help="Moses-tokenise stdin to stdout")
    t.add_argument("--lang", required=True)
    t.add_argument("--escape", action="store_true", help="HTML-escape special characters (Moses default)")
    t.add_argument("--lower", action="store_true")
    t.add_argument("--workers", type=int, default=1)
    c = sub.add_parser("clean", help="clean-corpus-n: drop empty, long and unbalanced pairs")
    c.add_argument("files", nargs=4, metavar="FILE", help="SRC_IN TGT_IN SRC_OUT TGT_OUT")
    c.add_argument("--ratio", type=float, default=1.5)
    c.add_argument("--min", type=int, default=1)
    c.add_argument("--max", type=int, default=175)
    sub.add_parser("lower", help="lowercase stdin to stdout (as Moses' lowercase.perl)")
    args = ap.parse_args(argv)

    # lines end at "\n" only, as for the perl tools: str.splitlines() and universal newlines
    # would also break at \r, \x0c or U+2028 inside a sentence and misalign the two sides
    sys.stdin.reconfigure(encoding="utf-8", newline="\n")
    sys.stdout.reconfigure(encoding="utf-8", newline="\n")
    if args.cmd == "tokenise":
        lines = read_lines(sys.stdin)
        out = tokenise_lines(lines, args.lang, args.escape, args.lower, args.workers)
        sys.stdout.write("".join(x + "\n" for x in out))
    elif args.cmd == "lower":
        for line in sys.stdin:
            sys.stdout.write(line.lower())
    else:
        src_in, tgt_in, src_out, tgt_out = args.files
        with open(src_in, encoding="utf-8", newline="\n") as f:
            src = read_lines(f)
        with open(tgt_in, encoding="utf-8", newline="\n") as f:
            tgt = read_lines(f)
        if len(src) != len(tgt):
            sys.exit(f"clean: {src_in} has {len(src)} lines but {tgt_in} has {len(tgt)}")
        src, tgt = clean_pairs(src, tgt, args.ratio, args.min, args.max)
        for path, lines in ((src_out, src), (tgt_out, tgt)):
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.writelines(x + "\n" for x in lines)
        print(f"clean: kept {len(src)} pairs", file=sys.stderr)


if __name__ == "__main__":
    _main()
