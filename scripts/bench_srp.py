"""SRP benchmark: size, speed and quality of the pruned demo model against its base, in one process.

    python scripts/bench_srp.py        # -> results/srp.json, results/srp.md

Uses the demo's checkpoints (runs scripts/demo-srp.sh first if they are missing; it caches). Measures
- parameter and FLOPs-per-sentence ratios pruned/base (FLOPs averaged over the test pairs);
- generation wall time on the same test set (beam 5, batch 128, as the original's test), both models
  timed in this process, interleaved, best of REPEATS runs each;
  the number of generated tokens is reported too (an undertrained model may write longer outputs);
- the time of a pruning-phase training step (gates on at mid-shrink, freeze masks in srp_adam, KD
  teacher) over a plain step of the same model and criterion (gates off, nothing frozen), interleaved
  on the same batches, median of STEPS each; the ratio against a step without the teacher is also
  reported, as the cost of distillation itself;
- BLEU of both models after fine-tuning (sacrebleu on the de-BPE'd output, as fairseq-generate
  --remove-bpe --scoring sacrebleu computes it).
Env: DATA (data-bin/de-en-offline), DEMO_DIR (checkpoints/srp-demo), REPEATS (3), STEPS (12),
THREADS (nproc), OUT_DIR (results), WEIGHTED_LN (1: time the weighted layer norm the demo prunes with).
"""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.chdir(REPO)

DATA = os.environ.get("DATA", "data-bin/de-en-offline")
DEMO_DIR = Path(os.environ.get("DEMO_DIR", "checkpoints/srp-demo"))
REPEATS = int(os.environ.get("REPEATS", 3))
STEPS = int(os.environ.get("STEPS", 12))
THREADS = int(os.environ.get("THREADS", os.cpu_count() or 1))
OUT_DIR = Path(os.environ.get("OUT_DIR", "results"))
WEIGHTED_LN = os.environ.get("WEIGHTED_LN", "1") == "1"
BASE = DEMO_DIR / "base" / "checkpoint_last.pt"
PRUNED = DEMO_DIR / "finetune" / "checkpoint_last.pt"
TARGETS = {"generate_time_ratio": 0.7, "step_time_ratio": 1.15, "bleu_drop": 1.0}


def ensure_checkpoints():
    if BASE.exists() and PRUNED.exists():
        return
    print(f"bench_srp: {BASE} or {PRUNED} missing, running scripts/demo-srp.sh", flush=True)
    subprocess.run(["bash", "scripts/demo-srp.sh"], check=True, env=dict(os.environ, DATA=DATA))


def generate(task, model, batches):
    """Beam search over the batches; returns (seconds, de-BPE'd hypotheses in sample-id order)."""
    import torch
    from argparse import Namespace

    gen = task.build_generator([model], Namespace(beam=5, max_len_a=0, max_len_b=200, lenpen=1.0))
    hyps = {}
    start = time.perf_counter()
    with torch.inference_mode():
        for sample in batches:
            out = task.inference_step(gen, [model], sample)
            for i, sid in enumerate(sample["id"].tolist()):
                hyps[sid] = out[i][0]["tokens"]
    seconds = time.perf_counter() - start
    d = task.target_dictionary
    n_tokens = sum(int(t.numel()) for t in hyps.values())
    return seconds, [d.string(hyps[k], "@@ ") for k in sorted(hyps)], n_tokens


def references(task, subset):
    ds = task.dataset(subset)
    d = task.target_dictionary
    return [d.string(ds[i]["target"], "@@ ", escape_unk=True) for i in range(len(ds))]


def test_batches(task, model, subset="test"):
    from fairseq import utils

    itr = task.get_batch_iterator(
        dataset=task.dataset(subset), max_sentences=128,
        max_positions=utils.resolve_max_positions(task.max_positions(), model.max_positions()),
        ignore_invalid_inputs=True, disable_iterator_cache=True).next_epoch_itr(shuffle=False)
    return list(itr)


def bench_generation(base, pruned, task):
    import sacrebleu

    batches = test_batches(task, base)
    refs = references(task, "test")
    times = {"base": [], "pruned": []}
    outputs = {}
    tokens = {}
    generate(task, base, batches[:1])  # warm-up (allocator, thread pool)
    for _ in range(REPEATS):
        for name, model in (("base", base), ("pruned", pruned)):
            seconds, hyps, tokens[name] = generate(task, model, batches)
            times[name].append(seconds)
            outputs[name] = hyps
    bleu = {name: sacrebleu.corpus_bleu(outputs[name], [refs]).score for name in outputs}
    return {name: min(t) for name, t in times.items()}, bleu, tokens


def bench_steps(base_path, task):
    """Plain step vs pruning-phase step of the base model (stage 0 selection at the demo rate)."""
    import copy

    import torch
    from argparse import Namespace
    from fairseq import checkpoint_utils

    from user_dir.srp.criterion import SRPCriterion
    from user_dir.srp.optimizer import SRPAdam, SRPAdamConfig
    from user_dir.srp.phases import PruningController

    from user_dir.srp.weighted_layernorm import SRPLayerNorm

    models, _ = checkpoint_utils.load_model_ensemble([str(base_path)], task=task)
    model = models[0]
    model.train()
    for m in model.modules():  # the layer norm of the demo's pruning runs
        if isinstance(m, SRPLayerNorm):
            m.weighted = WEIGHTED_LN
    teacher = copy.deepcopy(model)
    crit = SRPCriterion(task, False, 0.1)
    crit.set_teacher(teacher)
    plain_crit = SRPCriterion(task, False, 0.1)
    opt = SRPAdam(SRPAdamConfig(adam_betas="(0.9, 0.98)", lr=[1e-9], weight_decay=1e-4),
                  [p for p in model.parameters() if p.requires_grad])
    task.load_dataset("train")
    train_batches = list(task.get_batch_iterator(
        dataset=task.dataset("train"), max_tokens=4096, seed=1,
        max_positions=task.max_positions(), ignore_invalid_inputs=True,
        disable_iterator_cache=True).next_epoch_itr(shuffle=True))[:STEPS]

    class _Task:  # what the controller needs to select
        src_dict, tgt_dict, model_cfg, epoch = task.src_dict, task.tgt_dict, None, 1

        @staticmethod
        def scoring_batches(_model):
            return train_batches[:1]

        @staticmethod
        def updates_per_epoch():
            return 1000

    cfg = Namespace(srp=True, pruning_stage=0, pruning_period=1, pruning_iter=1, decreasing="sa",
                    warming_up=0, compression_rate=0.5)
    ctl = PruningController(cfg, _Task())
    ctl._select(model, crit, 0)

    def step(sample, pruning, kd=True):
        t0 = time.perf_counter()
        if pruning:
            ctl._set_c(model, 0.5 + 1e-3 * torch.rand(1).item())  # a new value every step
        opt.zero_grad()
        loss, _, _ = (crit if kd else plain_crit)(model, sample)
        opt.backward(loss)
        opt.step()
        return time.perf_counter() - t0

    times = {"plain": [], "pruning": [], "plain_no_kd": []}
    for p in (False, True):  # warm-up both paths
        model.set_gating(p)
        step(train_batches[0], p)
    for sample in train_batches:
        for mode in ("plain", "pruning", "plain_no_kd"):
            pruning = mode == "pruning"
            model.set_gating(pruning)
            if pruning:
                ctl._freeze(model, opt)
            else:
                opt.set_freeze({})
            times[mode].append(step(sample, pruning, kd=mode != "plain_no_kd"))
    model.set_gating(False)
    opt.set_freeze({})
    return {k: statistics.median(v) for k, v in times.items()}, int(sum(b["ntokens"] for b in train_batches) / len(train_batches))


def main():
    import torch

    torch.set_num_threads(THREADS)
    ensure_checkpoints()
    from user_dir.srp.report import load, mean_flops, split_lengths
    from user_dir.srp.counting import parameters

    base, task = load(str(BASE), DATA)
    pruned, _ = load(str(PRUNED), DATA)
    src, tgt = split_lengths(task, "test")
    size = {name: {"parameters": parameters(m), "flops_per_sentence": mean_flops(m, src, tgt)}
            for name, m in (("base", base), ("pruned", pruned))}
    gen_time, bleu, gen_tokens = bench_generation(base, pruned, task)
    steps, tokens = bench_steps(BASE, task)

    results = {
        "method": "srp",
        "data": DATA,
        "checkpoints": {"base": str(BASE), "pruned": str(PRUNED)},
        "compression_rate": json.loads((DEMO_DIR / "rate.json").read_text())["rate"]
        if (DEMO_DIR / "rate.json").exists() else None,
        "threads": THREADS,
        "base": {**size["base"], "bleu": bleu["base"], "generate_seconds": gen_time["base"],
                 "generated_tokens": gen_tokens["base"]},
        "pruned": {**size["pruned"], "bleu": bleu["pruned"], "generate_seconds": gen_time["pruned"],
                   "generated_tokens": gen_tokens["pruned"]},
        "parameter_ratio": size["pruned"]["parameters"] / size["base"]["parameters"],
        "flops_ratio": size["pruned"]["flops_per_sentence"] / size["base"]["flops_per_sentence"],
        "generate_time_ratio": gen_time["pruned"] / gen_time["base"],
        # the models may write outputs of different lengths: time per generated token, for reference
        "generate_time_per_token_ratio": (gen_time["pruned"] / gen_tokens["pruned"])
        / (gen_time["base"] / gen_tokens["base"]),
        "step_seconds": steps,
        "step_tokens": tokens,
        "step_time_ratio": steps["pruning"] / steps["plain"],
        "step_time_ratio_vs_no_kd": steps["pruning"] / steps["plain_no_kd"],
        "bleu_drop": bleu["base"] - bleu["pruned"],
    }
    results["targets"] = {k: {"target": v, "measured": results[k], "met": results[k] <= v}
                          for k, v in TARGETS.items()}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "srp.json").write_text(json.dumps(results, indent=1) + "\n")
    (OUT_DIR / "srp.md").write_text(markdown(results))
    print(markdown(results))


def markdown(r):
    t = r["targets"]
    ok = lambda k: "met" if t[k]["met"] else "not met"  # noqa: E731
    lines = [
        f"### SRP on {r['data']} (rate {r['compression_rate']}, {r['threads']} CPU threads)",
        "",
        "| model | parameters | FLOPs / sentence | BLEU | generate (s) | generated tokens |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("base", "pruned"):
        m = r[name]
        lines.append(f"| {name} | {m['parameters']:,} | {m['flops_per_sentence'] / 1e6:.2f} M | "
                     f"{m['bleu']:.2f} | {m['generate_seconds']:.2f} | {m['generated_tokens']:,} |")
    lines += [
        "",
        "| measure | value | target | |",
        "|---|---:|---:|---|",
        f"| parameters pruned/base | {r['parameter_ratio']:.3f} | | |",
        f"| FLOPs pruned/base | {r['flops_ratio']:.3f} | | |",
        f"| generate time pruned/base | {r['generate_time_ratio']:.3f} | ≤ 0.7 | {ok('generate_time_ratio')} |",
        f"| (generate time per generated token, pruned/base) | {r['generate_time_per_token_ratio']:.3f} | | |",
        f"| pruning-phase step / plain step | {r['step_time_ratio']:.3f} | ≤ 1.15 | {ok('step_time_ratio')} |",
        f"| (pruning-phase step / step without KD teacher) | {r['step_time_ratio_vs_no_kd']:.3f} | | |",
        f"| BLEU drop after fine-tuning | {r['bleu_drop']:.2f} | ≤ 1.0 | {ok('bleu_drop')} |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
