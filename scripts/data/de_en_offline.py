"""German-English sentence pairs from the Debian `trans-de-en` dictionary (Ding format).

Each line of ``usr/share/trans/de-en`` is ``DE :: EN``; ``|`` separates sub-entries (the i-th German
one translates the i-th English one) and ``;`` separates synonyms. Most sub-entries are words or
phrases with grammar labels; the example sentences among them make a small parallel corpus. This
module extracts those, splits them and writes tokenised and BPE text for fairseq-preprocess
(called by scripts/data/prepare-de-en-offline.sh, which downloads the package and binarises).

    python scripts/data/de_en_offline.py --dict FILE --workdir DIR [--seed 1] [--valid 1000]
        [--test 1000] [--vocab 4000] [--workers 1]

writes DIR/raw (untokenised split), DIR/tok (Moses-tokenised, lowercased), DIR/bpe (BPE with
``@@ `` markers), DIR/spm.model and DIR/stats.json.
"""
import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mt_text  # noqa: E402

LANGS = ("de", "en")
SPLITS = ("train", "valid", "test")
MIN_WORDS = 4

# Typographic quotes would make "don’t" and "don't" different tokens; the dictionary mixes both.
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201a": "'", "\u201e": '"',
                         "\u201c": '"', "\u201d": '"', "\u00a0": " "})
# Placeholders for "somebody"/"something" mark phrase patterns, not sentences.
_PLACEHOLDER = re.compile(r"(?<!\w)(sb|sth|jdm|jdn|jds|etw)\.")


def normalise(text):
    return " ".join(text.translate(_QUOTES).split())


def parse_line(line):
    """Aligned (de, en) sub-entry pairs of one dictionary line; [] for comments and odd lines.

    An entry whose two sides have different numbers of sub-entries cannot be aligned and is skipped.
    """
    line = line.strip()
    if not line or line.startswith("#"):
        return []
    sides = line.split(" :: ")
    if len(sides) != 2:
        return []
    de, en = (side.split("|") for side in sides)
    if len(de) != len(en):
        return []
    return [(normalise(d), normalise(e)) for d, e in zip(de, en)]


def reject_reason(de, en):
    """Why a sub-entry pair is not a usable sentence pair (None when it is). Checked in order."""
    both = f"{de} {en}"
    if not de or not en:
        return "empty"
    if de[-1] not in ".?!" or en[-1] not in ".?!":
        return "no-final-punctuation"
    if ";" in both:
        return "synonyms"
    if "/" in both:
        return "slash"
    if "{" in both or "}" in both:
        return "grammar-label"
    # [ugs.], [Br.] ... are usage labels, not text (the brief's rules did not list them; they
    # remove ~10 pairs, some of them mis-tagged words such as "Es [bot.] sich ...")
    if "[" in both or "]" in both:
        return "usage-label"
    if _PLACEHOLDER.search(both):
        return "placeholder"
    if len(de.split()) < MIN_WORDS or len(en.split()) < MIN_WORDS:
        return "short"
    return None


def extract_pairs(lines):
    """Unique sentence pairs of a dictionary, in file order, and counts of what was dropped.

    Duplicates are judged case-insensitively, since the text is lowercased for training.
    """
    stats = Counter()
    seen, pairs = set(), []
    for line in lines:
        subs = parse_line(line)
        stats["sub_entries"] += len(subs)
        for de, en in subs:
            why = reject_reason(de, en)
            if why:
                stats[f"rejected:{why}"] += 1
                continue
            key = (de.lower(), en.lower())
            if key in seen:
                stats["duplicates"] += 1
                continue
            seen.add(key)
            pairs.append((de, en))
    stats["pairs"] = len(pairs)
    return pairs, dict(stats)


def _groups(pairs):
    """Indices of pairs grouped so that pairs sharing a (lowercased) German or English side meet.

    Splitting whole groups keeps any sentence of valid/test out of train (the dictionary often
    gives one German sentence two English translations, and vice versa).
    """
    parent = list(range(len(pairs)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = {}
    for i, (de, en) in enumerate(pairs):
        for key in (("de", de.lower()), ("en", en.lower())):
            j = first.setdefault(key, i)
            parent[find(i)] = find(j)
    groups = {}
    for i in range(len(pairs)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values())  # by first index: independent of hashing


def split_pairs(pairs, n_valid, n_test, seed):
    """Deterministic train/valid/test split: exactly n_valid / n_test pairs, the rest train."""
    if n_valid + n_test >= len(pairs):
        raise ValueError(f"{len(pairs)} pairs are too few for {n_valid} valid + {n_test} test")
    groups = _groups(pairs)
    random.Random(seed).shuffle(groups)
    want = {"test": n_test, "valid": n_valid}
    out = {s: [] for s in SPLITS}
    for g in groups:
        # a group goes to the first held-out split it fits in whole; otherwise to train
        dest = next((s for s in ("test", "valid") if len(out[s]) + len(g) <= want[s]), "train")
        out[dest].extend(pairs[i] for i in g)
    return out


# ---------------------------------------------------------------- pipeline
def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(x + "\n" for x in lines)


def _avg_len(lines):
    return round(sum(len(x.split()) for x in lines) / max(1, len(lines)), 2)


def prepare(dict_path, workdir, seed=1, n_valid=1000, n_test=1000, vocab=4000, workers=1):
    t0 = time.time()
    workdir = Path(workdir)
    with open(dict_path, encoding="utf-8") as f:
        pairs, stats = extract_pairs(f)
    split = split_pairs(pairs, n_valid, n_test, seed)

    text = {}
    for s in SPLITS:
        for k, lang in enumerate(LANGS):
            raw = [p[k] for p in split[s]]
            _write(workdir / "raw" / f"{s}.{lang}", raw)
            # lowercased like the IWSLT'14 recipe; not HTML-escaped, so the text stays readable
            text[s, lang] = mt_text.tokenise_lines(raw, lang, escape=False, lower=True,
                                                   workers=workers)
            _write(workdir / "tok" / f"{s}.{lang}", text[s, lang])

    # one joint model for both languages (fairseq-preprocess --joined-dictionary)
    model = mt_text.train_bpe(text["train", "de"] + text["train", "en"], workdir / "spm", vocab,
                              threads=workers)
    apply = mt_text.BpeApplier(model)
    bpe = {}
    for key, lines in text.items():
        bpe[key] = [apply(x) for x in lines]
        _write(workdir / "bpe" / f"{key[0]}.{key[1]}", bpe[key])

    stats.update(
        seed=seed, vocab_requested=vocab, vocab_pieces=apply.sp.get_piece_size(),
        split_sizes={s: len(split[s]) for s in SPLITS},
        avg_words={lang: _avg_len([p[k] for p in pairs]) for k, lang in enumerate(LANGS)},
        avg_moses_tokens={lang: _avg_len([x for s in SPLITS for x in text[s, lang]])
                          for lang in LANGS},
        avg_bpe_tokens={lang: _avg_len([x for s in SPLITS for x in bpe[s, lang]])
                        for lang in LANGS},
        train_word_types={lang: len({w for x in text["train", lang] for w in x.split()})
                          for lang in LANGS},
        seconds=round(time.time() - t0, 1),
    )
    (workdir / "stats.json").write_text(json.dumps(stats, indent=1, sort_keys=True) + "\n")
    return stats


def _main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dict", required=True, help="the trans-de-en dictionary file")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--valid", type=int, default=1000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        stats = prepare(args.dict, args.workdir, args.seed, args.valid, args.test, args.vocab,
                        args.workers)
    except ValueError as e:
        sys.exit(f"de_en_offline: {e}")
    sizes = stats["split_sizes"]
    print(f"de_en_offline: {stats['pairs']} pairs -> train {sizes['train']}, valid "
          f"{sizes['valid']}, test {sizes['test']}; {stats['vocab_pieces']} BPE pieces; "
          f"{stats['seconds']} s")


if __name__ == "__main__":
    _main()
