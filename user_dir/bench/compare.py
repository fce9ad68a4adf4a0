"""Every sentence-prediction model of a comparison measured by the one protocol, in one process.

    python -m user_dir.bench.compare DATA --model base=BASE.pt --model pruned=PRUNED.pt \\
        [--splits valid,test] [--batch-sizes 1,8,32] [--threads 1] [--rounds 5] --out result.json

The first model is the reference. For every model: quality on each split (accuracy %, Pearson r x 100
for regression), summed encoder MACs and relative FLOPs against the reference on the same examples,
kept-token ratios of token-pruning models, parameters, throughput and speed-up at each batch size
(:mod:`user_dir.bench.timing`), and peak memory of one batch of the largest size
(:mod:`user_dir.bench.memory`). Timing uses the ``timing_split``'s batches in fairseq's length-sorted
order; at small batch sizes at most ``timing_limit`` examples, evenly spread over all lengths.
"""
import argparse
import logging
import time
from typing import Dict, List, Optional, Sequence

import torch

import user_dir  # noqa: F401  (registers the plugin's models)
from user_dir.bench import json_out, memory, sentence, timing

logger = logging.getLogger("user_dir.bench.compare")


def measure(models: Dict[str, "sentence.SentenceModel"], splits: Sequence[str], batch_sizes: Sequence[int],
            protocol: timing.Protocol, timing_split: str = "test", timing_limit: Dict[int, int] = None,
            log=logger.info) -> dict:
    torch.set_num_threads(protocol.threads)
    names = list(models)
    ref = models[names[0]]
    device = next(ref.model.parameters()).device  # where load_models put every model
    task = ref.task
    max_pos = ref.model.max_positions()
    out = {name: {"path": m.path, "overrides": m.overrides, "parameters": m.parameters(),
                  "encoder_layers": m.layer_sizes()} for name, m in models.items()}
    for split in splits:
        samples = sentence.batches(task, split, sentence.SCORE_BATCH_SIZE, max_positions=max_pos)
        for name, m in models.items():
            out[name][split] = sentence.score(m, samples)
        for name in names:
            rel = out[name][split]["macs"] / out[names[0]][split]["macs"]
            out[name][split]["relative_flops"] = rel
            log(f"{name} {split}: quality {out[name][split]['quality']:.2f}, relative FLOPs {rel:.4f}")
    timing_limit = timing_limit or {}
    for bsz in batch_sizes:
        samples = sentence.batches(task, timing_split, bsz, limit=timing_limit.get(bsz, 0), max_positions=max_pos)
        # on the device before timing: the figures are the models' work, not the copies to a GPU
        token_batches = [s["net_input"]["src_tokens"].to(device) for s in samples]
        runners = {name: m.forward for name, m in models.items()}
        timed = timing.time_models(runners, token_batches, protocol, device=device)
        for name in names:
            out[name][f"b{bsz}"] = timed[name]
            log(f"{name} batch {bsz}: {timed[name]['throughput']['median']:.1f} ex/s, speed-up "
                f"{timed[name]['speedup']['median']:.2f} ({timed[name]['speedup']['min']:.2f}-"
                f"{timed[name]['speedup']['max']:.2f})")
    if batch_sizes:
        big = max(batch_sizes)
        batch = sentence.batches(task, timing_split, big, max_positions=max_pos)[-1]["net_input"]["src_tokens"]
        batch = batch.to(device)
        for name, m in models.items():
            out[name]["peak_mb"] = memory.forward_peak_mb(m.model, lambda: m.forward(batch))
            out[name]["peak_mb_batch"] = list(batch.shape)
    return out


def row_fields(measured: dict, name: str, quality_split: str, batch_sizes: Sequence[int]) -> dict:
    """The ``results`` row fields of one measured model (quality, relative FLOPs, speed-ups...)."""
    m = measured[name]
    row = {"quality": round(m[quality_split]["quality"], 2), "quality_split": quality_split,
           "relative_flops": round(m[quality_split]["relative_flops"], 4), "parameters": m["parameters"]}
    for split in [k for k in m if isinstance(m[k], dict) and "quality" in m[k]]:
        if split != quality_split:
            row[f"quality_{split}"] = round(m[split]["quality"], 2)
            row[f"relative_flops_{split}"] = round(m[split]["relative_flops"], 4)
    for bsz in batch_sizes:
        row.update(timing.speed_fields(m[f"b{bsz}"], bsz))
    if m.get("peak_mb") is not None:
        row["peak_mb"] = m["peak_mb"]
    kept = {k: round(v, 4) for k, v in m[quality_split].items() if k.startswith("kept_l")}
    if kept:
        row["kept"] = kept
    return row


def load_models(specs: Sequence[str], data: str, device: str = "cpu") -> Dict[str, "sentence.SentenceModel"]:
    models = {}
    for spec in specs:
        name, path, overrides = sentence.parse_spec(spec)
        if name in models:
            raise ValueError(f"--model: the name {name!r} is used twice")
        arch = overrides.pop("arch", None)  # rebuild as another architecture, e.g. ltp_roberta_minilm
        models[name] = sentence.load(path, data, name, overrides, device=device, arch=arch)
    return models


def main(argv: Optional[List[str]] = None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="sentence_prediction data folder (fairseq-preprocess layout)")
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH[:KEY=VALUE,...]",
                   help="a checkpoint, optionally named and with model overrides; the first is the reference")
    p.add_argument("--splits", default="valid,test", help="splits to score (default: %(default)s)")
    p.add_argument("--timing-split", default="test", help="split whose batches are timed (default: %(default)s)")
    p.add_argument("--batch-sizes", default="1,8,32", help="batch sizes to time (default: %(default)s)")
    p.add_argument("--timing-limit", default="1:300,8:800",
                   help="BSZ:N,... at most N examples per timing pass at that batch size (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default: %(default)s)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where the models run; cuda: timed by CUDA events, GPU peak memory (default: %(default)s)")
    p.add_argument("--out", help="write the measurement as JSON here")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available to torch")
    # fairseq's import may already have configured the root logger: progress goes to stdout directly
    def progress(msg):
        print(f"{time.strftime('%H:%M:%S')} | {msg}", flush=True)

    models = load_models(args.model, args.data, args.device)
    progress(f"{len(models)} models loaded; scoring {args.splits}, timing batch sizes {args.batch_sizes}")
    sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    result = measure(models, args.splits.split(","), sizes, timing.Protocol(args.threads, args.rounds),
                     args.timing_split, timing.parse_limits(args.timing_limit), log=progress)
    json_out.emit({"protocol": timing.Protocol(args.threads, args.rounds).as_dict(), "device": args.device,
                   "models": result}, args.out)


if __name__ == "__main__":
    main()
