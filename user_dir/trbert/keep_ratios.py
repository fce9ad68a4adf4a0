"""The kept ratio a TR-BERT model reaches at each reduction point: the budget of the top-k baselines.

    python -m user_dir.trbert.keep_ratios data-bin/reviews --model rl=JOINT.pt [--model ...] \\
        [--splits valid,test] [--out ratios.json]

For every model (``NAME=PATH[:KEY=VALUE,...]`` as in ``python -m user_dir.bench.compare``), in its
inference mode on the given splits together: ``r_w = Σ_examples (kept_w − 1) / Σ_examples n_w``,
with ``n_w`` the active tokens entering point w (real tokens except ``<s>``) and ``kept_w`` the real
tokens leaving it (``<s>`` included, hence the − 1). Passing these ratios as
``--trbert-keep-ratios r_1,r_2`` to ``--trbert-select policy_topk`` / ``attention_topk``, where
every example keeps ``round(r_w · n_w)`` of its active tokens, keeps as many tokens in total as the
model did (up to rounding) on the same examples. Prints one ``NAME r_1,r_2`` line per model. The
JSON also gives ``padding_b32`` per point: the share of the slots of the batches of 32 (length-sorted,
as the harness scores) that no kept token fills after the point.
"""
import argparse
import json
import logging
from typing import Dict, List, Optional, Sequence

import torch

import user_dir  # noqa: F401  (registers the plugin)
from user_dir.bench import sentence
from user_dir.trbert.rollouts import ReductionControl

logger = logging.getLogger("user_dir.trbert.keep_ratios")


@torch.inference_mode()
def kept_and_active(sm: "sentence.SentenceModel", samples: Sequence[dict]) -> Dict[str, List[float]]:
    """Summed ``kept_w − 1``, active tokens ``n_w`` and batch slots (batch size × the longest kept
    example: what the layers after point w run on) per reduction point over ``samples``."""
    if not sm.reduces_tokens:
        raise ValueError(f"{sm.path}: not a TR-BERT model (no reduction points)")
    device = next(sm.model.parameters()).device
    kept = active = slots = None
    examples = 0
    for sample in samples:
        control = ReductionControl("greedy")
        sm.model(sample["net_input"]["src_tokens"].to(device), classification_head_name=sm.head,
                 reduction=control)
        k = torch.stack([(p.kept - 1).double().sum() for p in control.points])
        a = torch.stack([p.active.sum().double() for p in control.points])
        b = torch.stack([p.kept.max().double() * p.kept.numel() for p in control.points])
        kept, active, slots = (k, a, b) if kept is None else (kept + k, active + a, slots + b)
        examples += sample["nsentences"]
    return {"kept": kept.tolist(), "active": active.tolist(), "slots": slots.tolist(), "examples": examples}


def keep_ratios(sm: "sentence.SentenceModel", splits: Sequence[str]) -> dict:
    """``{"reduce_layers", "keep_ratios", "kept", "active", "examples", "splits"}`` of one model."""
    totals = None
    for split in splits:
        samples = sentence.batches(sm.task, split, sentence.SCORE_BATCH_SIZE, max_positions=sm.model.max_positions())
        counts = kept_and_active(sm, samples)
        if totals is None:
            totals = counts
        else:
            totals = {key: ([a + b for a, b in zip(totals[key], counts[key])] if isinstance(counts[key], list)
                            else totals[key] + counts[key]) for key in counts}
    ratios = [k / a if a else 1.0 for k, a in zip(totals["kept"], totals["active"])]
    return {"reduce_layers": list(sm.model.reduce_layers), "keep_ratios": ratios, "splits": list(splits),
            "padding_b32": batch_padding(totals), **totals}


def batch_padding(totals: dict) -> List[float]:
    """Per point, the share of the batches' slots after it that no kept token fills: a batch
    continues at its longest kept example, so a selection that keeps different counts per example
    pays for slots no token fills (``kept`` excludes each example's ``<s>``, the slots include it)."""
    return [1.0 - (k + totals["examples"]) / b for k, b in zip(totals["kept"], totals["slots"])]


def format_ratios(ratios: Sequence[float], digits: int = 4) -> str:
    """``0.4123,0.3012``: the value of ``--trbert-keep-ratios``."""
    return ",".join(f"{r:.{digits}f}" for r in ratios)


def main(argv: Optional[List[str]] = None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="sentence_prediction data folder")
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH[:KEY=VALUE,...]",
                   help="a TR-BERT checkpoint, optionally named and with model overrides")
    p.add_argument("--splits", default="valid,test", help="splits pooled together (default: %(default)s)")
    p.add_argument("--out", help="write the ratios as JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(message)s")
    splits = [s for s in args.splits.split(",") if s]
    out = {}
    for spec in args.model:
        name, path, overrides = sentence.parse_spec(spec)
        arch = overrides.pop("arch", None)
        out[name] = keep_ratios(sentence.load(path, args.data, name, overrides, arch=arch), splits)
        print(f"{name} {format_ratios(out[name]['keep_ratios'])}", flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"splits": splits, "models": out}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
