"""Accuracy, relative FLOPs and measured CPU throughput of fine-tuned and TR-BERT checkpoints.

    python -m user_dir.trbert.measure data-bin/reviews --split test \
        --model base=checkpoints/baseline-reviews/checkpoint_best.pt \
        --model "trbert a=1=checkpoints/trbert/joint/checkpoint_last.pt" --out measure.json

Every model runs in this one process, on the same examples and thread count. Accuracy and FLOPs
cover the whole split (batched, results are batch-size independent); throughput is the best of
``--repeats`` timed passes over the first ``--timing-examples`` examples at batch size 1 and at
``--batch-size``, models interleaved so that machine-load drift hits them alike.
"""
import argparse
import json
import logging
import time
from typing import Dict, List

import torch
from fairseq import checkpoint_utils
from fairseq.data import data_utils

from user_dir.trbert.flops import pass_macs
from user_dir.trbert.rollouts import ReductionControl

logger = logging.getLogger("user_dir.trbert.measure")
HEAD = "sentence_classification_head"


def load(path: str, data: str):
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides={"data": data})
    return models[0].eval(), task


def split_examples(task, split: str):
    task.load_dataset(split, combine=False, epoch=1)
    dataset = task.dataset(split)
    items = [dataset[i] for i in range(len(dataset))]  # item i is the example with id i
    return [it["net_input.src_tokens"] for it in items], torch.stack([it["target"] for it in items]).view(-1)


def batches(tokens: List[torch.Tensor], size: int, pad: int):
    for start in range(0, len(tokens), size):
        yield data_utils.collate_tokens(tokens[start:start + size], pad)


def reduces(model) -> bool:
    return hasattr(model, "reduce_layers")


@torch.inference_mode()
def quality(model, tokens, targets, pad: int, batch_size: int) -> Dict[str, float]:
    """Accuracy (%), relative FLOPs and kept ratios over every example."""
    correct, flops, full, kept, total = 0, 0.0, 0.0, {}, 0
    start = 0
    for batch in batches(tokens, batch_size, pad):
        control = ReductionControl("greedy")
        kwargs = {"reduction": control} if reduces(model) else {}
        logits, _ = model(batch, classification_head_name=HEAD, **kwargs)
        n = batch.size(0)
        correct += int((logits.argmax(-1) == targets[start:start + n]).sum())
        start += n
        lengths = batch.ne(pad).sum(1)
        total += int(lengths.sum())
        if reduces(model):
            reduced, unreduced = pass_macs(model.layers, model.sentence_encoder.policies, control)
            flops += float(reduced.sum())
            full += float(unreduced.sum())
            for point in control.points:
                kept[f"kept_l{point.layer}"] = kept.get(f"kept_l{point.layer}", 0) + int(point.kept.sum())
    result = {"accuracy": round(100.0 * correct / len(tokens), 2),
              "rel_flops": round(flops / full, 4) if full else 1.0}
    result.update({k: round(v / total, 4) for k, v in kept.items()})
    return result


@torch.inference_mode()
def timed_pass(model, tokens, pad: int, batch_size: int) -> float:
    start = time.perf_counter()
    for batch in batches(tokens, batch_size, pad):
        model(batch, classification_head_name=HEAD)
    return time.perf_counter() - start


def measure(models: Dict[str, torch.nn.Module], tokens, targets, pad: int, batch_size: int,
            timing_examples: int, repeats: int) -> List[dict]:
    rows = {name: {"model": name, **quality(m, tokens, targets, pad, batch_size)} for name, m in models.items()}
    timing = tokens[:timing_examples]
    for size, key in ((1, "throughput_b1"), (batch_size, f"throughput_b{batch_size}")):
        best = {name: float("inf") for name in models}
        for name, m in models.items():  # warm-up
            timed_pass(m, timing[:size], pad, size)
        for _ in range(repeats):
            for name, m in models.items():
                best[name] = min(best[name], timed_pass(m, timing, pad, size))
        for name in models:
            rows[name][key] = round(len(timing) / best[name], 3)  # examples per second
    first = next(iter(rows.values()))
    for row in rows.values():
        for size in (1, batch_size):
            row[f"speedup_b{size}"] = round(row[f"throughput_b{size}"] / first[f"throughput_b{size}"], 3)
    return list(rows.values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=CHECKPOINT",
                        help="repeatable; the first is the reference of the speed-ups")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--timing-examples", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    torch.set_num_threads(args.threads)
    models, task = {}, None
    for spec in args.model:
        name, _, path = spec.rpartition("=")
        models[name], task = load(path, args.data)
    tokens, targets = split_examples(task, args.split)
    pad = task.source_dictionary.pad()
    rows = measure(models, tokens, targets, pad, args.batch_size, args.timing_examples, args.repeats)
    result = {"split": args.split, "examples": len(tokens), "timing_examples": min(len(tokens), args.timing_examples),
              "threads": args.threads, "batch_size": args.batch_size, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    for row in rows:
        logger.info("%s", json.dumps(row))


if __name__ == "__main__":
    main()
