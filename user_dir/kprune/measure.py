"""Accuracy and measured CPU throughput of fairseq sentence_prediction checkpoints, in one process.

Used by the Kprune demo and benchmark; also a small tool of its own:

    python -m user_dir.kprune.measure DATA --path base.pt --path pruned.pt --json out.json

Speed is always a ratio measured here, on one machine, with the models taking turns on the same
batches (round-robin, median of rounds), so a background load affects all of them alike.
"""
import argparse
import json
import statistics
import time
from typing import Dict, List, Sequence

import torch
from fairseq import checkpoint_utils

from user_dir.common.split_batches import split_batches
from user_dir.kprune.checkpoint import classification_head_name, is_regression
from user_dir.kprune.flops import flops_model_for, model_sizes


def load(path: str, data: str, device="cpu"):
    """(model in eval mode, task, cfg) of a checkpoint, its task pointed at ``data``."""
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides={"data": data})
    return models[0].to(device).eval(), task, cfg


@torch.no_grad()
def accuracy(model, task, cfg, split: str, batch_size: int = 64) -> float:
    """Classification accuracy (%) on ``split``."""
    if is_regression(cfg):
        raise ValueError("accuracy is for classification checkpoints; this one is a regression model")
    head = classification_head_name(cfg)
    device = next(model.parameters()).device
    correct = total = 0
    for sample in split_batches(task, split, batch_size, model.max_positions()):
        tokens = sample["net_input"]["src_tokens"].to(device)
        logits = model(tokens, features_only=True, classification_head_name=head)[0]
        correct += int((logits.argmax(-1).cpu() == sample["target"].view(-1)).sum())
        total += tokens.size(0)
    return 100.0 * correct / total


@torch.no_grad()
def throughput(models: Dict[str, torch.nn.Module], token_batches: Sequence[torch.Tensor], head: str,
               rounds: int = 5, min_seconds: float = 0.5) -> Dict[str, float]:
    """Sequences per second of each model on the same batches, measured in alternating turns."""
    def one_pass(model):
        start = time.perf_counter()
        n = 0
        while True:
            for tokens in token_batches:
                model(tokens, features_only=True, classification_head_name=head)
                n += tokens.size(0)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                return n / elapsed

    for model in models.values():  # warm-up (allocator, kernels)
        one_pass(model)
    results: Dict[str, List[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            results[name].append(one_pass(model))
    return {name: statistics.median(values) for name, values in results.items()}


def speed_batches(task, split: str, batch_size: int, max_positions: int, limit_sequences: int = 256):
    """Token tensors of up to ``limit_sequences`` examples of ``split`` in batches of ``batch_size``."""
    out, n = [], 0
    for sample in split_batches(task, split, batch_size, max_positions):
        out.append(sample["net_input"]["src_tokens"])
        n += out[-1].size(0)
        if n >= limit_sequences:
            break
    return out


def describe(model, avg_length: float) -> dict:
    heads, ffn = model_sizes(model)
    fm = flops_model_for(model, avg_length)
    return {"heads": ",".join(map(str, heads)), "ffn": ",".join(map(str, ffn)),
            "mflops": fm.total(heads, ffn) / 1e6,
            "params_m": sum(p.numel() for p in model.encoder.sentence_encoder.layers.parameters()) / 1e6}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="sentence_prediction data directory")
    p.add_argument("--path", action="append", required=True, help="checkpoint (repeat to compare several)")
    p.add_argument("--splits", default="valid,test", help="splits to score (default: %(default)s)")
    p.add_argument("--speed-split", default="valid", help="split whose examples time the models")
    p.add_argument("--batch-sizes", default="1,32", help="batch sizes to time (default: %(default)s)")
    p.add_argument("--speed-sequences", type=int, default=256, help="examples per timing pass")
    p.add_argument("--rounds", type=int, default=5, help="alternating timing rounds (median taken)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    import user_dir  # noqa: F401  (registers the models)
    from user_dir.kprune.data import average_length

    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = {path: load(path, args.data) for path in args.path}
    first_model, first_task, first_cfg = loaded[args.path[0]]
    n = average_length(first_task.dataset(args.speed_split)) if args.speed_split in first_task.datasets \
        else None
    rows = []
    for path, (model, task, cfg) in loaded.items():
        row = {"path": path}
        for split in args.splits.split(","):
            row[f"{split}_accuracy"] = accuracy(model, task, cfg, split)
        if n is None:
            task.load_dataset(args.speed_split, combine=False, epoch=1)
            n = average_length(task.dataset(args.speed_split))
        row.update(describe(model, n))
        rows.append(row)
    head = classification_head_name(first_cfg)
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        batches = speed_batches(first_task, args.speed_split, bs, first_model.max_positions(), args.speed_sequences)
        speeds = throughput({path: m for path, (m, _, _) in loaded.items()}, batches, head, rounds=args.rounds)
        for row in rows:
            row[f"seq_per_s_b{bs}"] = speeds[row["path"]]
    result = {"avg_length": n, "threads": torch.get_num_threads(), "rows": rows}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
