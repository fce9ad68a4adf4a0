"""Score and time several sentence_prediction checkpoints in one process (the LTP demo and bench).

For every model: accuracy and relative encoder FLOPs on the given splits (the same numbers
fairseq-validate prints), and throughput in examples/s at each batch size. All models see the
same batches (fairseq's length-sorted batching, as fairseq-validate uses), timing passes are
interleaved across models and repeated, and the best pass counts, so a busy machine slows every
model alike. Both wall-clock and process CPU time are recorded: on a shared machine the CPU time
ratio is the steadier one.

    python -m user_dir.ltp.measure --data data-bin/sentiment --model base=BASE.pt \\
        --model ltp=LTP.pt --model ltp-masked=LTP.pt:ltp_physical_removal=False --out result.json
"""
import argparse
import json
import time
from typing import Dict, List

import torch
from fairseq import checkpoint_utils, tasks, utils
from omegaconf import OmegaConf, open_dict

import user_dir  # noqa: F401  (registers the plugin's models)
from user_dir.common.split_batches import split_batches
from user_dir.ltp.flops import layer_dims, unpruned_macs

HEAD = "sentence_classification_head"


def load(path: str, data: str, overrides: Dict, arch: str = None):
    """Model and task of a checkpoint; ``arch`` rebuilds its weights as another architecture
    (e.g. a plain fine-tuned model as ``ltp_roberta_minilm``, thresholds at delta = 0)."""
    state = checkpoint_utils.load_checkpoint_to_cpu(path, arg_overrides={"data": data, **overrides})
    cfg = state["cfg"]
    if arch:
        if OmegaConf.is_config(cfg.model):
            with open_dict(cfg.model):
                cfg.model._name = cfg.model.arch = arch
        else:  # legacy argparse checkpoints keep a Namespace here
            cfg.model._name = cfg.model.arch = arch
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    model.load_state_dict(state["model"], strict=True, model_cfg=cfg.model)
    return model.eval(), task


def batches(task, split: str, batch_size: int, limit: int = 0) -> List[dict]:
    """fairseq's batches of ``split`` (length-sorted, as fairseq-validate makes them); with ``limit``,
    evenly spaced batches holding about ``limit`` examples, so every length range is represented."""
    out = split_batches(task, split, batch_size)
    examples = sum(s["nsentences"] for s in out)
    if limit and examples > limit:
        keep = max(1, round(len(out) * limit / examples))
        out = [out[round(i * (len(out) - 1) / max(1, keep - 1))] for i in range(keep)]
    return out


def _encoder(model):
    return model.encoder.sentence_encoder


@torch.inference_mode()
def score(model, samples) -> Dict[str, float]:
    """Accuracy (%) and relative encoder FLOPs (sum over examples) on ``samples``."""
    correct = total = 0
    spent = full = 0.0
    enc = _encoder(model)
    dims = [layer_dims(layer) for layer in enc.layers]
    for sample in samples:
        logits = model(sample["net_input"]["src_tokens"], classification_head_name=HEAD)[0]
        target = sample["target"].view(-1)
        correct += int((logits.argmax(-1) == target).sum())
        total += target.numel()
        stats = getattr(enc, "last_stats", None)
        if stats is not None:
            s, f = stats.macs(dims)
        else:  # a model without LTP: every token through every layer
            n0 = sample["net_input"]["src_tokens"].ne(enc.padding_idx).sum(1)
            s = f = float(unpruned_macs(dims, n0).sum())
        spent, full = spent + s, full + f
    return {"accuracy": 100.0 * correct / total, "rel_flops": spent / full, "examples": total}


@torch.inference_mode()
def timed_pass(model, samples):
    wall, cpu = time.perf_counter(), time.process_time()
    for sample in samples:
        model(sample["net_input"]["src_tokens"], classification_head_name=HEAD)
    return time.perf_counter() - wall, time.process_time() - cpu


def parse_model(spec: str):
    """``name=path[:key=value,key=value]`` -> (name, path, overrides)."""
    name, rest = spec.split("=", 1)
    path, _, extra = rest.partition(":")
    overrides = {}
    for item in filter(None, extra.split(",")):
        key, value = item.split("=", 1)
        overrides[key] = utils.eval_bool(value) if value in ("True", "False") else eval(value)
    return name, path, overrides


def measure(specs, data, splits, batch_sizes, timing_split, timing_examples, repeats, threads, log=print):
    torch.set_num_threads(threads)
    models, task = {}, None
    for spec in specs:
        name, path, overrides = parse_model(spec)
        models[name], task = load(path, data, overrides)
    result = {"threads": threads, "repeats": repeats, "models": {n: {} for n in models}}
    # score on every split (batch 32, like fairseq-validate)
    for split in splits:
        samples = batches(task, split, 32)
        for name, model in models.items():
            result["models"][name][split] = score(model, samples)
            log(f"{name} {split}: {result['models'][name][split]}")
    # throughput: same batches for every model, interleaved, best of `repeats`
    for bsz in batch_sizes:
        samples = batches(task, timing_split, bsz, limit=timing_examples.get(bsz, 0))
        n = sum(s["nsentences"] for s in samples)
        best = {name: [float("inf"), float("inf")] for name in models}
        for name, model in models.items():  # warm-up
            timed_pass(model, samples[:3])
        for _ in range(repeats):
            for name, model in models.items():
                wall, cpu = timed_pass(model, samples)
                best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
        for name in models:
            result["models"][name][f"b{bsz}"] = {
                "examples": n, "wall_s": best[name][0], "cpu_s": best[name][1],
                "throughput": n / best[name][0], "throughput_cpu": n / best[name][1]}
            log(f"{name} batch {bsz}: {n / best[name][0]:.1f} ex/s wall, {n / best[name][1]:.1f} ex/s cpu")
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="sentence_prediction data folder")
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH[:KEY=VALUE,...]",
                   help="a checkpoint to measure, with optional model overrides; the first is the reference")
    p.add_argument("--splits", default="valid,test", help="splits to score (accuracy, relative FLOPs)")
    p.add_argument("--timing-split", default="test")
    p.add_argument("--batch-sizes", default="1,32")
    p.add_argument("--timing-examples", default="1:300",
                   help="BSZ:N,... cap the examples timed per pass at a batch size (default 1:300; else all)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="write the result as JSON here")
    args = p.parse_args(argv)
    limits = {int(k): int(v) for k, v in (item.split(":") for item in filter(None, args.timing_examples.split(",")))}
    result = measure(args.model, args.data, args.splits.split(","), [int(b) for b in args.batch_sizes.split(",") if b],
                     args.timing_split, limits, args.repeats, args.threads)
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
