#!/usr/bin/env python
"""Your own labelled text -> a fairseq ``sentence_prediction`` data folder. Run it through
scripts/data/prepare-own-data.sh (same options, the project's venv, MiniLM prepared when missing):

  prepare-own-data.sh --train FILE [--valid FILE] [--test FILE] --out DIR [--encoder DIR]
                      [--regression] [--valid-fraction 0.1] [--seed 1] [--max-tokens N]

Rows: ``label<TAB>text`` or ``label<TAB>text<TAB>text2`` (.tsv / .txt, split on tabs) or the same
comma-separated with CSV quoting (.csv). Text goes to input0/, a second text to input1/ (sentence
pairs), labels to label/: class labels binarised with a label dictionary in a fixed order (all
labels integers: numeric order; otherwise sorted strings), float targets with --regression as
label/{split}.label text (what fairseq's sentence_prediction reads for --regression-target).
Without --valid, a validation split is carved from --train (--valid-fraction, --seed); without
--test there is no test split. DIR/data.json describes the result; DIR is replaced atomically.
Details: docs/encoder-foundation.md, "Your own data". Exit codes: 0 ok, 2 bad options or data,
1 anything else (e.g. fairseq-preprocess failed).
"""
import argparse
import json
import logging
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import own_data_encoders as encoders  # noqa: E402
from own_data_rows import (DataError, check_mostly_bad, class_order, file_format,  # noqa: E402
                           read_file)

PROG = "prepare-own-data"
SPLITS = ("train", "valid", "test")
MINILM_DIR = Path(os.environ.get("MINILM_DIR", REPO / "checkpoints" / "minilm"))


# ---------------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the whole usage)
        raise DataError(f"{message} (see --help)")


def parse_args(argv):
    p = Parser(prog="prepare-own-data.sh", allow_abbrev=False, description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True, metavar="FILE", help="training examples (.tsv/.txt/.csv)")
    p.add_argument("--valid", metavar="FILE", help="validation examples (default: carved from --train)")
    p.add_argument("--test", metavar="FILE", help="test examples (default: no test split)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder, e.g. data-bin/NAME")
    p.add_argument("--encoder", metavar="DIR", help=f"tokeniser + dictionary folder (default: {MINILM_DIR})")
    p.add_argument("--regression", action="store_true", help="labels are float targets")
    p.add_argument("--valid-fraction", type=float, default=None, metavar="F",
                   help="share of --train held out as validation when there is no --valid (0.1)")
    p.add_argument("--seed", type=int, default=1, help="seed of the carved validation split (1)")
    p.add_argument("--max-tokens", type=int, default=None, metavar="N",
                   help="symbols per example without <s>/</s>; pairs: N - 2 for both texts "
                        "(default: the model's positions - 2, 510 for 512)")
    return p.parse_args(argv)


def made_by_us(folder):
    try:
        return json.loads((folder / "data.json").read_text(encoding="utf-8")).get("made_by") == PROG
    except (OSError, ValueError, AttributeError):
        return False


def check_args(args):
    """Every option error, before anything is written."""
    for opt in SPLITS:
        path = getattr(args, opt)
        if path is None:
            continue
        if not Path(path).is_file():
            raise DataError(f"--{opt} {path}: no such file")
        if file_format(path) is None:
            raise DataError(f"--{opt} {path}: unknown file type (use .tsv or .txt for tab-separated, "
                            ".csv for comma-separated)")
    if args.valid and args.valid_fraction is not None:
        raise DataError("--valid-fraction: only without --valid (it carves the validation split from --train)")
    args.carve = args.valid is None
    args.valid_fraction = 0.1 if args.valid_fraction is None else args.valid_fraction
    if not 0 < args.valid_fraction < 1:
        raise DataError(f"--valid-fraction {args.valid_fraction}: must be between 0 and 1")
    if args.max_tokens is not None and args.max_tokens < 4:
        raise DataError(f"--max-tokens {args.max_tokens}: must be at least 4")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not made_by_us(out):
        raise DataError(f"--out {out}: exists and is not a data folder made by {PROG}.sh "
                        "(no data.json of ours); choose another --out or remove it")
    for opt in SPLITS:
        path = getattr(args, opt)
        if path and out.resolve() in Path(path).resolve().parents:
            raise DataError(f"--{opt} {path}: lies inside --out {out}, which is replaced")
    if args.encoder is not None:
        encoders.detect(args.encoder)


def encoder_for(args):
    """The --encoder folder, or the embedded MiniLM (prepared by prepare-minilm.sh when missing)."""
    if args.encoder is not None:
        return encoders.detect(args.encoder)
    if not all((MINILM_DIR / f).is_file() for f in ("model.pt", "dict.txt", "vocab.txt")):
        print(f"{PROG}: {MINILM_DIR} is missing; running scripts/models/prepare-minilm.sh", flush=True)
        env = dict(os.environ, MINILM_DIR=str(MINILM_DIR))
        if subprocess.run(["bash", str(REPO / "scripts/models/prepare-minilm.sh")], env=env).returncode:
            raise RuntimeError("scripts/models/prepare-minilm.sh failed (see above)")
    return encoders.detect(MINILM_DIR)


# ---------------------------------------------------------------------------------------------
# reading, tokenising, splitting
# ---------------------------------------------------------------------------------------------
def read_and_tokenize(args, encoder, max_tokens):
    """Per split: (FileRows, items, truncated); item = (label, symbols, symbols2 or None)."""
    out, columns = {}, None
    for split in SPLITS:
        path = getattr(args, split)
        if path is None:
            continue
        rows, columns = read_file(path, file_format(path), columns, args.regression)
        firsts = encoders.tokenize(encoder, [e.text for e in rows.examples])
        seconds = (encoders.tokenize(encoder, [e.text2 for e in rows.examples]) if columns == 3
                   else [None] * len(firsts))
        items, kept, truncated = [], [], 0
        for ex, a, b in zip(rows.examples, firsts, seconds):
            if not a or (columns == 3 and not b):
                rows.bad.append((ex.line, "text tokenises to nothing"))
                continue
            a, b, cut = encoders.truncate(a, b, max_tokens)
            truncated += cut
            kept.append(ex)
            items.append((ex.label, a, b))
        rows.examples = kept
        rows.bad.sort()
        check_mostly_bad(rows, f"--{split}")
        out[split] = (rows, items, truncated)
    return out, columns == 3


def carve(items, fraction, seed):
    """Hold out round(fraction * n) (at least 1) examples, chosen by a seeded shuffle; both parts
    keep the file order. Same data + seed -> same split."""
    if len(items) < 2:
        raise DataError(f"--train: {len(items)} example(s); at least 2 are needed to carve a validation split")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_valid = min(len(items) - 1, max(1, round(fraction * len(items))))
    held = set(order[:n_valid])
    return ([x for i, x in enumerate(items) if i not in held],
            [x for i, x in enumerate(items) if i in held])


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def write_text(splits, text_dir, pairs, classes):
    text_dir.mkdir(parents=True)
    for split, items in splits.items():
        columns = {"input0": [" ".join(a) for _, a, _ in items], "label": [lab for lab, _, _ in items]}
        if pairs:
            columns["input1"] = [" ".join(b) for _, _, b in items]
        for key, lines in columns.items():
            (text_dir / f"{split}.{key}").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    if classes:
        counts = Counter(lab for lab, _, _ in splits["train"])
        (text_dir / "label.dict.txt").write_text("".join(f"{c} {counts[c]}\n" for c in classes), encoding="utf-8")


def fairseq_preprocess(srcdict, text_dir, key, splits, dest):
    """``fairseq-preprocess --only-source --srcdict SRCDICT`` in this process (its log goes to
    DEST/preprocess.log only)."""
    from fairseq import options
    from fairseq_cli import preprocess

    argv = ["--only-source", "--srcdict", str(srcdict), "--workers", "1", "--destdir", str(dest)]
    for split in splits:
        argv += [f"--{split}pref", str(text_dir / f"{split}.{key}")]
    log = logging.getLogger("fairseq_cli.preprocess")
    level, propagate = log.level, log.propagate
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        preprocess.main(options.get_preprocessing_parser().parse_args(argv))
    finally:
        log.setLevel(level)
        log.propagate = propagate
        for h in list(log.handlers):  # preprocess.main adds a FileHandler per call
            if isinstance(h, logging.FileHandler):
                log.removeHandler(h)
                h.close()


def binarise(tmp, splits, pairs, encoder, regression):
    text = tmp / "text"
    for key in ("input0", "input1") if pairs else ("input0",):
        fairseq_preprocess(encoder.dict_txt, text, key, splits, tmp / key)
    if regression:
        (tmp / "label").mkdir()
        for split in splits:
            shutil.copyfile(text / f"{split}.label", tmp / "label" / f"{split}.label")
    else:
        fairseq_preprocess(text / "label.dict.txt", text, "label", splits, tmp / "label")


def install(tmp, out):
    """Put the finished folder in place: rename, replacing an earlier folder of ours."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / out.name)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def shown_path(path):
    """A path as the repository's scripts take it: relative to the repository when inside."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def next_command(out, encoder, ckpt):
    """The fine-tuning command for the folder; the class count (or regression) is read from it."""
    q = shlex.quote
    data = shown_path(out)
    prefix = "" if Path.cwd().resolve() == REPO else f"cd {q(str(REPO))} && "
    env = [f"DATA={q(data)}"]
    if encoder.dir.resolve() != MINILM_DIR.resolve():
        env += [f"RESTORE={q(shown_path(ckpt.path))}", f"ARCH={ckpt.arch}"]
        if ckpt.positions != encoders.DEFAULT_POSITIONS:
            env.append(f"MAX_POSITIONS={ckpt.positions}")
        if ckpt.model_args:
            env.append(f"EXTRA_ARGS={q(' '.join(ckpt.model_args))}")
    return prefix + " ".join(env) + " bash scripts/models/finetune-baseline.sh"


def label_counts(items, classes):
    counts = Counter(lab for lab, _, _ in items)
    return {c: counts[c] for c in classes}


def unk_percent(items, known):
    symbols = [s for _, a, b in items for s in a + (b or [])]
    return round(100.0 * sum(1 for s in symbols if s not in known) / max(1, len(symbols)), 3)


def data_json(args, read, splits, classes, pairs, encoder, ckpt, max_tokens, out):
    """DEST/data.json: what other scripts need to know about the folder."""
    known = encoders.dict_symbols(encoder.dict_txt)
    regression = args.regression
    return {
        "made_by": PROG,
        "task": "regression" if regression else "classification",
        "regression": regression,
        "num_classes": 1 if regression else len(classes),
        "labels": classes,
        "label_counts": None if regression else {s: label_counts(items, classes) for s, items in splits.items()},
        "splits": {s: len(items) for s, items in splits.items()},
        "valid_from": "train" if args.carve else "file",
        "valid_fraction": args.valid_fraction if args.carve else None,
        "seed": args.seed if args.carve else None,
        "pairs": pairs,
        "columns": ["label", "text", "text2"] if pairs else ["label", "text"],
        "encoder": encoders.encoder_json(encoder, ckpt),
        "max_tokens": max_tokens,
        # with <s> and </s> (pairs: also the separator and the second </s>)
        "avg_tokens": {s: round(sum(len(a) + 2 + (len(b) + 2 if pairs else 0) for _, a, b in items)
                                / len(items), 2) for s, items in splits.items()},
        "unk_percent": {s: unk_percent(items, known) for s, items in splits.items()},
        # per input file
        "truncated": {s: t for s, (_, _, t) in read.items()},
        "bad_rows": {s: len(rows.bad) for s, (rows, _, _) in read.items()},
        "header_line": {s: rows.header_line for s, (rows, _, _) in read.items()},
        "sources": {s: str(Path(getattr(args, s)).resolve()) for s in read},
        "next": next_command(out, encoder, ckpt),
    }


def report_file(split, rows, counts):
    """What was read from one file; ``counts``: label counts over all files (classification)."""
    notes = []
    if rows.header_line:
        notes.append(f"header (line {rows.header_line}) skipped")
    elif counts and rows.examples and rows.examples[0].line == rows.first_line:
        first = rows.examples[0].label
        if counts[first] == 1:
            notes.append(f"warning: the first row's label {first!r} occurs nowhere else; if that row "
                         "is a header, call its label column 'label'")
    if rows.bad:
        notes.append(rows.bad_summary())
    print(f"{PROG}: --{split} {rows.path}: {len(rows.examples)} examples"
          + "".join(f"\n  {n}" for n in notes))


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
def run(argv):
    args = parse_args(argv)
    check_args(args)
    encoder = encoder_for(args)
    ckpt = encoders.checkpoint_info(encoder)
    max_tokens = args.max_tokens or ckpt.positions - 2
    read, pairs = read_and_tokenize(args, encoder, max_tokens)
    counts = None if args.regression else Counter(lab for _, items, _ in read.values() for lab, _, _ in items)
    for split, (rows, _, _) in read.items():
        report_file(split, rows, counts)

    splits = {s: items for s, (_, items, _) in read.items()}
    if args.carve:
        splits["train"], splits["valid"] = carve(splits["train"], args.valid_fraction, args.seed)
        splits = {s: splits[s] for s in SPLITS if s in splits}
    classes = None
    if not args.regression:
        classes = class_order(lab for items in splits.values() for lab, _, _ in items)
        if len(classes) < 2:
            raise DataError(f"only one label {classes[0]!r} in the data: a classifier needs at least 2 "
                            "classes (float targets? add --regression)")

    shown, out = args.out, Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write_text(splits, tmp / "text", pairs, classes)
        binarise(tmp, list(splits), pairs, encoder, args.regression)
        info = data_json(args, read, splits, classes, pairs, encoder, ckpt, max_tokens, out)
        (tmp / "data.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary(Path(shown), info, splits, args, encoder, ckpt)
    return info


def summary(out, info, splits, args, encoder, ckpt):
    sizes = ", ".join(f"{s} {n}" for s, n in info["splits"].items())
    print(f"{PROG}: wrote {out} (fairseq sentence_prediction layout; details in {out / 'data.json'})")
    print(f"  splits: {sizes}" + (f" (valid carved from --train: fraction {args.valid_fraction}, "
                                  f"seed {args.seed})" if args.carve else ""))
    if "test" not in info["splits"]:
        print("  no test split: pass --test FILE to get one"
              + ("" if args.regression else " (finetune-baseline.sh ends with fairseq-validate on "
                 "valid,test: without a test split that last step fails after training)"))
    print("  pairs: " + ("yes (first text in input0/, second in input1/)" if info["pairs"] else "no (input0/ only)"))
    if args.regression:
        ys = [float(lab) for lab, _, _ in splits["train"]]
        print(f"  task: regression (float targets in label/<split>.label; train range "
              f"{min(ys):g} .. {max(ys):g}, mean {sum(ys) / len(ys):g})")
    else:
        print("  labels (class index: label): " + ", ".join(f"{i}: {c}" for i, c in enumerate(info["labels"])))
        print(f"  classes: {info['num_classes']}")
        missing = [c for c in info["labels"] if not info["label_counts"]["train"][c]]
        if missing:
            print(f"  warning: label(s) {missing} occur in valid/test but not in train")
    trunc = sum(info["truncated"].values())
    print(f"  encoder: {encoder.describe()}; {trunc} example(s) truncated "
          f"to {info['max_tokens']} symbols; unknown symbols: "
          + ", ".join(f"{s} {p} %" for s, p in info["unk_percent"].items()))
    gpt2 = encoder.kind == "gpt2"
    if not ckpt.exists:
        print(f"  note: {ckpt.path} does not exist yet: put the pretrained model.pt there"
              + (" (roberta.base's; for roberta.large use ARCH=roberta_large)" if gpt2 else ""))
    elif gpt2 and not ckpt.known:
        print("  note: ARCH assumed roberta_base (use ARCH=roberta_large for roberta.large)")
    print(f"next: {info['next']}")


def main(argv=None):
    try:
        run(argv)
    except DataError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
