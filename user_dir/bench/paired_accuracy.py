"""Is one classifier more accurate than another on the same examples? McNemar's exact test.

    python -m user_dir.bench.paired_accuracy DATA --model a=A.pt --model b=B.pt[:KEY=VALUE,...] \\
        --pair a:b [--pair ...] [--splits valid,test] --out paired.json

Two models scored on the same few hundred examples disagree on only some of them; whether the
accuracy difference is more than chance depends on those discordant examples alone, not on the
overall accuracy. Unpaired intervals (one Wilson interval per model) ignore the pairing and are far
too wide to separate models that mostly agree. The exact test: of the ``n`` examples where exactly
one of the two is right, ``a_only`` are won by the first; under "equally accurate" ``a_only`` is
Binomial(n, 1/2), and the two-sided p-value is ``min(1, 2 · P(X ≤ min(a_only, b_only)))``.

Models load as in :mod:`user_dir.bench.compare` (same specs, same length-sorted batches of 32), so
the accuracies here are the harness's; the examples of all ``--splits`` are pooled.
"""
import argparse
import math
from typing import Dict, List, Optional, Sequence

import torch

import user_dir  # noqa: F401  (registers the plugin's models)
from user_dir.bench import compare, json_out, sentence


def mcnemar_exact(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> dict:
    """Discordant counts and the exact two-sided McNemar p-value of two paired correctness vectors."""
    a = torch.as_tensor(a_correct, dtype=torch.bool)
    b = torch.as_tensor(b_correct, dtype=torch.bool)
    if a.shape != b.shape:
        raise ValueError(f"paired vectors differ in length: {a.numel()} and {b.numel()}")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    n = a_only + b_only
    tail = sum(math.comb(n, k) for k in range(min(a_only, b_only) + 1)) / 2 ** n if n else 1.0
    return {"examples": int(a.numel()), "a_correct": int(a.sum()), "b_correct": int(b.sum()),
            "a_only": a_only, "b_only": b_only, "difference_points": 100.0 * (a_only - b_only) / max(1, a.numel()),
            "p": min(1.0, 2.0 * tail)}


def correct_by_model(models: Dict[str, "sentence.SentenceModel"], splits: Sequence[str]) -> Dict[str, torch.Tensor]:
    """Per-example correctness of every model, the splits concatenated in order (dataset ids within)."""
    ref = next(iter(models.values()))
    max_pos = ref.model.max_positions()
    out = {name: [] for name in models}
    for split in splits:
        samples = sentence.batches(ref.task, split, sentence.SCORE_BATCH_SIZE, max_positions=max_pos)
        for name, m in models.items():
            out[name].append(sentence.correct_mask(m, samples))
    return {name: torch.cat(masks) for name, masks in out.items()}


def parse_pair(text: str, names: Sequence[str]):
    a, sep, b = text.partition(":")
    if not sep or a not in names or b not in names:
        raise ValueError(f"--pair {text!r}: expected A:B with A and B among the --model names "
                         f"({', '.join(names)})")
    return a, b


def main(argv: Optional[List[str]] = None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="sentence_prediction data folder (fairseq-preprocess layout)")
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH[:KEY=VALUE,...]",
                   help="a checkpoint, named, optionally with model overrides (as user_dir.bench.compare)")
    p.add_argument("--pair", action="append", required=True, metavar="A:B",
                   help="compare model A with model B (names from --model); repeatable")
    p.add_argument("--splits", default="valid,test", help="splits pooled for the test (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--out", help="write the result as JSON here (default: print it)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [sentence.parse_spec(s)[0] for s in args.model]
    try:
        pairs = [parse_pair(t, names) for t in args.pair]
    except ValueError as e:
        p.error(str(e))
    splits = [s for s in args.splits.split(",") if s]
    correct = correct_by_model(compare.load_models(args.model, args.data), splits)
    result = {"splits": splits, "test": "McNemar, exact two-sided",
              "accuracy": {n: 100.0 * float(c.float().mean()) for n, c in correct.items()},
              "correct": {n: "".join("1" if x else "0" for x in c.tolist()) for n, c in correct.items()},
              "pairs": [{"a": a, "b": b, **mcnemar_exact(correct[a], correct[b])} for a, b in pairs]}
    for r in result["pairs"]:
        print(f"{r['a']} vs {r['b']}: {r['a_correct']} / {r['b_correct']} of {r['examples']} right; "
              f"only {r['a']} {r['a_only']}, only {r['b']} {r['b_only']}; p = {r['p']:.3g}", flush=True)
    json_out.emit(result, args.out)


if __name__ == "__main__":
    main()
