"""SRP benchmark: size, speed and quality of the pruned demo model against its base, in one process.

    python scripts/bench_srp.py                    # -> results/srp.json, results/srp.md
    python scripts/bench_srp.py --only-paper-size  # the paper-size section alone; prints, writes nothing

Uses the demo's checkpoints (runs scripts/demo/srp.sh first if they are missing; it caches). Measures
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
At the demo's d=64, beam search is dominated by per-step overhead, not by the matrix products, so
halving the FLOPs barely shows in the generate time. A second section, "paper-size architecture",
makes the same comparison where the products dominate:
- an srp_iwslt_de_en model (d 512, 4 heads, FFN 1024, 6+6 layers, tied output projection) with random
  weights (fixed seed) over the data's dictionaries, and its counterpart pruned to PAPER_RATE by the
  SRP code path: the controller's selection (gradient scores on one training batch, the counts of
  compression_rate.py) at stage 1 (embedding dims), physical slicing, then stage 2 (FFN, q·k, v·o
  dims) and slicing; parameter and FLOPs ratios are reported;
- generation wall time of both on PAPER_SENTENCES test sentences (spread over the lengths, batch
  PAPER_BATCH, beam 5), the output length forced to FORCED_LEN tokens + eos for both (random weights
  would write arbitrary lengths; the token counts are checked equal), interleaved, best of REPEATS;
- the pruning-phase / plain step ratio of the unpruned paper-size model (as above, PAPER_STEPS batches
  of PAPER_STEP_TOKENS tokens: the size is costly at 1 thread);
- as a diagnostic of per-step overhead, the generate time of the demo's base model against stock
  fairseq `transformer` of the same widths and weights (same forced length, DIAG_SENTENCES test
  sentences, batch DIAG_BATCH; the hypotheses are compared too).
Env: DATA (data-bin/de-en-offline), DEMO_DIR (checkpoints/srp-demo), REPEATS (3), STEPS (12),
THREADS (nproc), OUT_DIR (results), WEIGHTED_LN (1: time the weighted layer norm the demo prunes with),
PAPER_RATE (0.5), PAPER_SENTENCES (192), PAPER_BATCH (64), FORCED_LEN (30), PAPER_STEPS (4; 0 skips),
PAPER_STEP_TOKENS (1024), DIAG_SENTENCES (384), DIAG_BATCH (128).
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
TARGETS = {"generate_time_ratio": 0.7, "step_time_ratio": 1.15, "bleu_drop": 1.0,
           "paper_size_generate_time_ratio": 0.7, "paper_size_step_time_ratio": 1.15}
# paper-size section (random weights, forced output length) and overhead diagnostic
PAPER_ARCH = "srp_iwslt_de_en"
PAPER_SEED = 1
PAPER_RATE = float(os.environ.get("PAPER_RATE", 0.5))
PAPER_SCORE_TOKENS = 1024  # the one training batch the gradient scores are summed over
PAPER_SENTENCES = int(os.environ.get("PAPER_SENTENCES", 192))
PAPER_BATCH = int(os.environ.get("PAPER_BATCH", 64))
FORCED_LEN = int(os.environ.get("FORCED_LEN", 30))
DIAG_SENTENCES = int(os.environ.get("DIAG_SENTENCES", 384))
DIAG_BATCH = int(os.environ.get("DIAG_BATCH", 128))
PAPER_STEPS = int(os.environ.get("PAPER_STEPS", 4))
PAPER_STEP_TOKENS = int(os.environ.get("PAPER_STEP_TOKENS", 1024))


def ensure_checkpoints():
    if BASE.exists() and PRUNED.exists():
        return
    print(f"bench_srp: {BASE} or {PRUNED} missing, running scripts/demo/srp.sh", flush=True)
    subprocess.run(["bash", "scripts/demo/srp.sh"], check=True, env=dict(os.environ, DATA=DATA))


def generate(task, model, batches, forced_len=None):
    """Beam search over the batches; returns (seconds, de-BPE'd hypotheses in sample-id order, number
    of generated tokens). With ``forced_len`` N every hypothesis is N tokens plus eos (eos forbidden
    before step N, forced at step N), whatever the weights: a fixed amount of decoding work."""
    import torch
    from argparse import Namespace

    if forced_len is None:
        args = Namespace(beam=5, max_len_a=0, max_len_b=200, lenpen=1.0)
    else:
        args = Namespace(beam=5, max_len_a=0, max_len_b=forced_len, min_len=forced_len, lenpen=1.0)
    gen = task.build_generator([model], args)
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
    from fairseq import checkpoint_utils

    models, _ = checkpoint_utils.load_model_ensemble([str(base_path)], task=task)
    return bench_steps_of(models[0], task, max_tokens=4096, steps=STEPS)


def bench_steps_of(model, task, max_tokens, steps):
    """Plain step vs pruning-phase step of ``model`` (trained in place with lr 1e-9), on the first
    ``steps`` training batches of ``max_tokens``; returns (median seconds per mode, mean tokens)."""
    import copy

    import torch
    from argparse import Namespace

    from user_dir.srp.criterion import SRPCriterion
    from user_dir.srp.optimizer import SRPAdam, SRPAdamConfig
    from user_dir.srp.phases import PruningController

    from user_dir.srp.weighted_layernorm import SRPLayerNorm

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
        dataset=task.dataset("train"), max_tokens=max_tokens, seed=1,
        max_positions=task.max_positions(), ignore_invalid_inputs=True,
        disable_iterator_cache=True).next_epoch_itr(shuffle=True))[:steps]

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


# ---- paper-size architecture ----------------------------------------------------------------------
def test_subset_batches(task, n, bsz):
    """``n`` test sentences spread evenly over the length-sorted test set (all of it if ``n`` >= its
    size), collated in consecutive groups of ``bsz`` (so a batch holds sentences of similar length,
    as fairseq's batching makes it)."""
    ds = task.dataset("test")
    order = [int(i) for i in ds.ordered_indices()]
    if n < len(order):
        order = [order[round(i * (len(order) - 1) / max(n - 1, 1))] for i in range(n)]
    return [ds.collater([ds[i] for i in order[j:j + bsz]]) for j in range(0, len(order), bsz)]


def build_paper_model(task, weighted_layernorm=False, seed=PAPER_SEED):
    """``srp_iwslt_de_en`` (d 512, 4 heads, FFN 1024, 6+6 layers, tied output projection, as the
    original's launch) over the task's dictionaries, random weights."""
    import torch
    from argparse import Namespace
    from fairseq.models import ARCH_CONFIG_REGISTRY

    from user_dir.srp.model import SRPModel

    cfg = Namespace(arch=PAPER_ARCH, share_decoder_input_output_embed=True,
                    weighted_layernorm=weighted_layernorm,
                    max_source_positions=task.cfg.max_source_positions,
                    max_target_positions=task.cfg.max_target_positions)
    ARCH_CONFIG_REGISTRY[PAPER_ARCH](cfg)
    torch.manual_seed(seed)
    model = SRPModel.build_model(cfg, task)
    model.eval()
    return model


def prune_two_stages(model, task, rate, score_batches):
    """SRP's two stages on ``model``, in place, through the pipeline's own code: the controller's
    selection (gradient scores -dL/dc on ``score_batches``, the counts of compression_rate.py for
    ``rate`` relative to the original arch) at stage 1 (embedding dims), physical slicing, then the
    same at stage 2 (FFN neurons, q·k and v·o dims) and slicing. No training in between (the
    c-shrinking and fine-tuning change weights, not shapes). Returns the groups removed per kind."""
    from argparse import Namespace

    from user_dir.srp.criterion import SRPCriterion
    from user_dir.srp.phases import PruningController
    from user_dir.srp.slicing import slice_selected

    crit = SRPCriterion(task, False, 0.1)

    class _Task:  # what the controller needs to select
        src_dict, tgt_dict, model_cfg, epoch = task.src_dict, task.tgt_dict, None, 1

        @staticmethod
        def scoring_batches(_model):
            return score_batches

        @staticmethod
        def updates_per_epoch():
            return 1

    removed = {}
    for stage in (1, 2):
        cfg = Namespace(srp=True, pruning_stage=stage, pruning_period=1, pruning_iter=1, decreasing="sa",
                        warming_up=0, compression_rate=rate)
        PruningController(cfg, _Task())._select(model, crit, 0)
        for g in model.gates():
            n = int(g.sel.sum())
            if n:
                key = f"{g.kind} ({g.side})" if g.kind != "fc" else "fc"
                removed[key] = removed.get(key, 0) + n
        slice_selected(model, None)
    model.eval()
    return removed


def time_generation(task, models, batches, forced_len):
    """Forced-length beam search of each model on the same batches, interleaved, best of REPEATS."""
    times = {name: [] for name in models}
    tokens, hyps = {}, {}
    for model in models.values():  # warm-up (allocator, thread pool, each model's shapes)
        generate(task, model, batches[:1], forced_len)
    for _ in range(REPEATS):
        for name, model in models.items():
            seconds, hyps[name], tokens[name] = generate(task, model, batches, forced_len)
            times[name].append(seconds)
    return {name: min(t) for name, t in times.items()}, tokens, hyps


def bench_paper_size(task, demo_base, with_steps=True):
    """The paper-size comparison (random weights, forced output length) and the overhead diagnostic
    of the demo arch against stock fairseq; prints as it goes, returns the figures."""
    import copy

    from user_dir.srp.counting import parameters
    from user_dir.srp.report import mean_flops, split_lengths

    t_start = time.perf_counter()
    say = lambda text: print(f"bench_srp [paper size, {time.perf_counter() - t_start:.0f} s]: {text}",  # noqa: E731
                             flush=True)
    src, tgt = split_lengths(task, "test")
    task.load_dataset("train")
    score_batches = list(task.get_batch_iterator(
        dataset=task.dataset("train"), max_tokens=PAPER_SCORE_TOKENS, seed=1,
        max_positions=task.max_positions(), ignore_invalid_inputs=True,
        disable_iterator_cache=True).next_epoch_itr(shuffle=True))[:1]

    base = build_paper_model(task)
    # the pruning runs load the base weights into a model with the weighted layer norm (WEIGHTED_LN),
    # as scripts/srp/stage*.sh do; the base keeps the plain one it was trained with
    pruned = build_paper_model(task, weighted_layernorm=WEIGHTED_LN)
    pruned.load_state_dict(base.state_dict())
    removed = prune_two_stages(pruned, task, PAPER_RATE, score_batches)
    size = {name: {"parameters": parameters(m), "flops_per_sentence": mean_flops(m, src, tgt)}
            for name, m in (("base", base), ("pruned", pruned))}
    say(f"{PAPER_ARCH}: {size['base']['parameters']:,} -> {size['pruned']['parameters']:,} parameters "
        f"({size['pruned']['parameters'] / size['base']['parameters']:.3f}), FLOPs "
        f"{size['pruned']['flops_per_sentence'] / size['base']['flops_per_sentence']:.3f}; removed {removed}")

    batches = test_subset_batches(task, PAPER_SENTENCES, PAPER_BATCH)
    n_sent = sum(len(b["id"]) for b in batches)
    gen_time, gen_tokens, _ = time_generation(task, {"base": base, "pruned": pruned}, batches, FORCED_LEN)
    expected = n_sent * (FORCED_LEN + 1)  # N tokens + eos per sentence
    assert gen_tokens["base"] == gen_tokens["pruned"] == expected, (gen_tokens, expected)
    say(f"generate ({n_sent} test sentences, batch {PAPER_BATCH}, beam 5, forced length {FORCED_LEN}): "
        f"base {gen_time['base']:.2f} s, pruned {gen_time['pruned']:.2f} s, "
        f"ratio {gen_time['pruned'] / gen_time['base']:.3f}")

    paper = {
        "arch": PAPER_ARCH,
        "weights": f"random (seed {PAPER_SEED})",
        "compression_rate": PAPER_RATE,
        "selection": f"two stages (embedding dims; FFN, q·k, v·o dims) by the srp controller, gradient "
                     f"scores on one training batch of <= {PAPER_SCORE_TOKENS} tokens, then slicing",
        "removed_groups": removed,
        "layer_norm": {"base": "plain", "pruned": "weighted" if WEIGHTED_LN else "plain"},
        "pruned_shapes": json.loads(pruned.current_shapes().to_json()),
        "generate": {"sentences": n_sent, "batch": PAPER_BATCH, "beam": 5, "forced_len": FORCED_LEN,
                     "repeats": REPEATS},
        "base": {**size["base"], "generate_seconds": gen_time["base"], "generated_tokens": gen_tokens["base"]},
        "pruned": {**size["pruned"], "generate_seconds": gen_time["pruned"],
                   "generated_tokens": gen_tokens["pruned"]},
        "parameter_ratio": size["pruned"]["parameters"] / size["base"]["parameters"],
        "flops_ratio": size["pruned"]["flops_per_sentence"] / size["base"]["flops_per_sentence"],
        "generate_time_ratio": gen_time["pruned"] / gen_time["base"],
    }
    del pruned

    # overhead diagnostic: the demo's base model against fairseq's transformer of the same widths
    # and weights, same forced length, on the same test subset
    from user_dir.srp.stock_transformer import stock_transformer_like

    stock = stock_transformer_like(demo_base, task)
    diag_batches = test_subset_batches(task, DIAG_SENTENCES, DIAG_BATCH)
    n_diag = sum(len(b["id"]) for b in diag_batches)
    d_time, d_tokens, d_hyps = time_generation(task, {"srp": demo_base, "transformer": stock},
                                               diag_batches, FORCED_LEN)
    assert d_tokens["srp"] == d_tokens["transformer"] == n_diag * (FORCED_LEN + 1), d_tokens
    same = sum(a == b for a, b in zip(d_hyps["srp"], d_hyps["transformer"]))
    overhead = {
        "arch": str(getattr(demo_base.cfg, "_name", None) or getattr(demo_base.cfg, "arch", None)),
        "sentences": n_diag, "batch": DIAG_BATCH, "beam": 5, "forced_len": FORCED_LEN, "repeats": REPEATS,
        "srp_seconds": d_time["srp"], "transformer_seconds": d_time["transformer"],
        "generated_tokens": d_tokens["srp"],
        "same_hypotheses": f"{same}/{n_diag}",
        "ratio": d_time["srp"] / d_time["transformer"],
    }
    say(f"overhead: demo base (srp) {d_time['srp']:.2f} s vs stock transformer {d_time['transformer']:.2f} s "
        f"({n_diag} sentences, batch {DIAG_BATCH}), ratio {overhead['ratio']:.3f}; "
        f"identical hypotheses {same}/{n_diag}")
    del stock

    if with_steps and PAPER_STEPS > 0:
        # the unpruned paper-size model, as bench_steps times the demo base
        steps, tokens = bench_steps_of(copy.deepcopy(base), task, max_tokens=PAPER_STEP_TOKENS,
                                       steps=PAPER_STEPS)
        paper.update(step_seconds=steps, step_tokens=tokens, steps=PAPER_STEPS,
                     step_time_ratio=steps["pruning"] / steps["plain"],
                     step_time_ratio_vs_no_kd=steps["pruning"] / steps["plain_no_kd"])
        say(f"steps ({PAPER_STEPS} x ~{tokens} tokens): plain {steps['plain']:.2f} s, pruning-phase "
            f"{steps['pruning']:.2f} s, without KD {steps['plain_no_kd']:.2f} s; ratio "
            f"{paper['step_time_ratio']:.3f} (vs no KD {paper['step_time_ratio_vs_no_kd']:.3f})")
    paper["seconds"] = time.perf_counter() - t_start
    return paper, overhead


def main(argv=None):
    import argparse

    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only-paper-size", action="store_true",
                        help="run only the paper-size section and the overhead diagnostic; print their "
                             "figures, write nothing")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    ensure_checkpoints()
    if args.only_paper_size:
        from user_dir.srp.report import load

        base, task = load(str(BASE), DATA)
        paper, overhead = bench_paper_size(task, base)
        print(json.dumps({"paper_size": paper, "overhead_diagnostic": overhead}, indent=1))
        print(markdown_paper_size(paper, overhead, {}))
        return
    from user_dir.srp.report import load, mean_flops, split_lengths
    from user_dir.srp.counting import parameters

    base, task = load(str(BASE), DATA)
    pruned, _ = load(str(PRUNED), DATA)
    src, tgt = split_lengths(task, "test")
    size = {name: {"parameters": parameters(m), "flops_per_sentence": mean_flops(m, src, tgt)}
            for name, m in (("base", base), ("pruned", pruned))}
    gen_time, bleu, gen_tokens = bench_generation(base, pruned, task)
    steps, tokens = bench_steps(BASE, task)
    paper, overhead = bench_paper_size(task, base)

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
        # what the physically smaller model buys where the matrix products dominate
        "paper_size": paper,
        "paper_size_generate_time_ratio": paper["generate_time_ratio"],
        # srp decoding vs fairseq's transformer of the same widths: per-step overhead of our model
        "overhead_diagnostic": overhead,
    }
    if "step_time_ratio" in paper:
        results["paper_size_step_time_ratio"] = paper["step_time_ratio"]
    results["targets"] = {k: {"target": v, "measured": results[k], "met": results[k] <= v}
                          for k, v in TARGETS.items() if k in results}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "srp.json").write_text(json.dumps(results, indent=1) + "\n")
    (OUT_DIR / "srp.md").write_text(markdown(results))
    print(markdown(results))


def model_table(entries, with_bleu: bool):
    """Markdown rows of the base and pruned models: size, FLOPs, (BLEU,) generate time and tokens."""
    bleu_head, bleu_rule = (" BLEU |", "---:|") if with_bleu else ("", "")
    lines = [f"| model | parameters | FLOPs / sentence |{bleu_head} generate (s) | generated tokens |",
             f"|---|---:|---:|{bleu_rule}---:|---:|"]
    for name in ("base", "pruned"):
        m = entries[name]
        bleu = f" {m['bleu']:.2f} |" if with_bleu else ""
        lines.append(f"| {name} | {m['parameters']:,} | {m['flops_per_sentence'] / 1e6:.2f} M |{bleu} "
                     f"{m['generate_seconds']:.2f} | {m['generated_tokens']:,} |")
    return lines


def markdown(r):
    t = r["targets"]
    ok = lambda k: "met" if t[k]["met"] else "not met"  # noqa: E731
    lines = [
        f"### SRP on {r['data']} (rate {r['compression_rate']}, {r['threads']} CPU threads)",
        "",
        *model_table(r, with_bleu=True),
    ]
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
    if "paper_size" in r:
        lines.append(markdown_paper_size(r["paper_size"], r["overhead_diagnostic"], t))
    return "\n".join(lines)


def markdown_paper_size(p, o, targets):
    def ok(key, value, target):
        met = targets[key]["met"] if key in targets else value <= target
        return f"≤ {target:g} | {'met' if met else 'not met'}"

    g = p["generate"]
    n = g["forced_len"]
    lines = [
        f"#### Paper-size architecture: {p['arch']} (d 512, 4 heads, FFN 1024, 6+6 layers), "
        f"{p['weights']} weights",
        "",
        f"Pruned to rate {p['compression_rate']} by the SRP code path: {p['selection']}. Generation: "
        f"{g['sentences']} test sentences spread over the lengths, batch {g['batch']}, beam {g['beam']}, "
        f"output length forced to {n} tokens + eos for both models (random weights would write "
        f"arbitrary lengths), interleaved, best of {g['repeats']}. Layer norm: base "
        f"{p['layer_norm']['base']}, pruned {p['layer_norm']['pruned']} (as the demo's pair).",
        "",
        *model_table(p, with_bleu=False),
    ]
    lines += [
        "",
        "| measure | value | target | |",
        "|---|---:|---:|---|",
        f"| parameters pruned/base, {p['arch']} | {p['parameter_ratio']:.3f} | | |",
        f"| FLOPs pruned/base, {p['arch']} | {p['flops_ratio']:.3f} | | |",
        f"| generate time pruned/base, {p['arch']} random weights, forced length {n} | "
        f"{p['generate_time_ratio']:.3f} | {ok('paper_size_generate_time_ratio', p['generate_time_ratio'], 0.7)} |",
    ]
    if "step_time_ratio" in p:
        lines += [
            f"| pruning-phase step / plain step, {p['arch']} (unpruned, {p['steps']} steps of "
            f"~{p['step_tokens']} tokens) | {p['step_time_ratio']:.3f} | "
            f"{ok('paper_size_step_time_ratio', p['step_time_ratio'], 1.15)} |",
            f"| (pruning-phase step / step without KD teacher, {p['arch']}) | "
            f"{p['step_time_ratio_vs_no_kd']:.3f} | | |",
        ]
    lines += [
        f"| generate time demo base ({o['arch']}) / stock fairseq transformer, same widths and weights, "
        f"forced length {o['forced_len']} ({o['sentences']} sentences, batch {o['batch']}; identical "
        f"hypotheses {o['same_hypotheses']}) | {o['ratio']:.3f} | | |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
