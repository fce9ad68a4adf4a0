#!/usr/bin/env python
"""LTP benchmark on the sentiment sentences (MiniLM-L6): accuracy, relative encoder FLOPs and measured
CPU throughput at batch 1 and 32 for LTP at three lambdas, the top-k and manual-threshold baselines
at LTP's FLOPs, and LTP with masking only vs physical removal. Writes results/ltp.json, results/ltp.md.

Every model comes from scripts/ltp-stages.sh (cached, shared with the demo). The top-k keep rate and
the manual threshold are chosen to spend the same relative FLOPs as the middle lambda's LTP model
(top-k analytically from the dev lengths; the manual threshold by bisection on the dev split with
the fine-tuned weights). All models are then scored and timed in one process
(python -m user_dir.ltp.measure). Targets: >= 2x fewer encoder FLOPs with <= 1 point accuracy drop,
and a measured speed-up of at least 0.8x the FLOPs reduction.

    python scripts/bench_ltp.py [--lambdas 0.03 0.05 0.1] [--threads 1] [--repeats 3]
"""
import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET_FLOPS = 0.5   # relative FLOPs at most (>= 2x reduction)
TARGET_DROP = 1.0    # accuracy points at most
TARGET_SPEED = 0.8   # measured speed-up / FLOPs reduction at least
OUT_ROOT = "checkpoints/ltp-demo"


def run(cmd, env=None):
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=REPO, check=True, env={**os.environ, **(env or {})})


def topk_rate_for(rel_flops, data, num_layers=6, d=384, d_ff=1536):
    """Keep rate whose top-k schedule spends ``rel_flops`` on the dev split (exact counts, bisection)."""
    from user_dir.common.data_stats import example_lengths
    from user_dir.ltp import scoring
    from user_dir.ltp.flops import LayerDims, layer_macs

    n0 = example_lengths(data, "valid").astype(np.float64)
    dims = LayerDims(d, d, d_ff)

    def spend(rate):
        rates = scoring.topk_keep_rates(rate, num_layers)
        n_a, total = n0, 0.0
        for r in rates:
            n_f = np.maximum(1, np.round(n0 * r))
            total += layer_macs(dims, n_a, n_f).sum()
            n_a = n_f
        return total / (num_layers * layer_macs(dims, n0, n0).sum())

    lo, hi = -3.0, 1.0  # spend() rises with the rate; at -3 every layer after the third keeps 1 %
    if spend(lo) > rel_flops:
        # its first 3 layers keep every token: on a 6-layer model top-k cannot go below ~0.55
        print(f"top-k cannot spend as little as {rel_flops:.3f} (floor {spend(lo):.3f}): using its floor",
              flush=True)
        return lo
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if spend(mid) < rel_flops else (lo, mid)
    return round((lo + hi) / 2, 3)


def manual_threshold_for(rel_flops, data, baseline, threads):
    """Final threshold whose unlearned schedule spends ``rel_flops`` on dev with the fine-tuned weights."""
    import torch
    from user_dir.ltp import measure

    torch.set_num_threads(threads)
    model, task = measure.load(baseline, data, {}, arch="ltp_roberta_minilm")
    samples = measure.batches(task, "valid", 32)
    encoder = model.encoder.sentence_encoder
    lo, hi = 0.0, 0.2  # spending falls as the threshold rises
    for _ in range(9):
        mid = (lo + hi) / 2
        encoder.ltp = dataclasses.replace(encoder.ltp, final_token_threshold=mid)
        spent = measure.score(model, samples)["rel_flops"]
        print(f"manual threshold {mid:.4f}: relative FLOPs {spent:.3f}", flush=True)
        lo, hi = (mid, hi) if spent > rel_flops else (lo, mid)
    return round((lo + hi) / 2, 4)


def rows_from(measured, names, splits):
    base = measured["models"][names[0][0]]
    rows = []
    for name, label in names:
        m = measured["models"][name]
        row = {"model": label}
        for split in splits:
            row[f"accuracy_{split}"] = round(m[split]["accuracy"], 2)
            row[f"drop_{split}"] = round(base[split]["accuracy"] - m[split]["accuracy"], 2)
        row["rel_flops"] = round(m["test"]["rel_flops"], 4)
        for key in [k for k in m if k.startswith("b")]:
            row[f"throughput_{key}"] = round(m[key]["throughput"], 2)
            row[f"speedup_{key}"] = round(m[key]["throughput"] / base[key]["throughput"], 3)
            row[f"speedup_cpu_{key}"] = round(m[key]["throughput_cpu"] / base[key]["throughput_cpu"], 3)
        rows.append(row)
    return rows


def judge(row, batch_keys):
    reduction = 1.0 / row["rel_flops"]
    verdict = {"flops_and_accuracy": row["rel_flops"] <= TARGET_FLOPS and row["drop_test"] <= TARGET_DROP}
    for key in batch_keys:
        verdict[f"speed_{key}"] = row[f"speedup_{key}"] >= TARGET_SPEED * reduction
        verdict[f"speed_cpu_{key}"] = row[f"speedup_cpu_{key}"] >= TARGET_SPEED * reduction
    return verdict


def markdown(result):
    keys = result["batch_keys"]
    lines = [
        "# LTP on the sentiment sentences (MiniLM-L6, Rotten-Tomatoes sentences, ~26 tokens)",
        "",
        f"Accuracy on dev / test; relative encoder FLOPs (LTP's MAC model) on test; throughput in examples/s "
        f"on {result['threads']} CPU thread(s), best of {result['repeats']} interleaved passes, every model in "
        f"one process (batch 1: {result['timing_examples_b1']} test sentences spread over all lengths; batch 32: the whole "
        f"test split in fairseq's length-sorted batches). Speed-up = throughput / the fine-tuned model's, "
        f"wall clock (CPU-time ratio in brackets: steadier on a shared machine).",
        f"Targets: relative FLOPs <= {TARGET_FLOPS} with <= {TARGET_DROP} point test-accuracy drop; speed-up >= "
        f"{TARGET_SPEED} x FLOPs reduction.",
        "",
        "| model | acc dev | acc test (drop) | rel. FLOPs | " +
        " | ".join(f"ex/s {k} | speed-up {k}" for k in keys) + " | FLOPs+acc target | speed target (" +
        " / ".join(keys) + ") |",
        "|---|---|---|---|" + "---|---|" * len(keys) + "---|---|",
    ]
    for row in result["rows"]:
        cells = [row["model"], f"{row['accuracy_valid']:.2f}", f"{row['accuracy_test']:.2f} ({-row['drop_test']:+.2f})",
                 f"{row['rel_flops']:.3f} ({1 / row['rel_flops']:.2f}x)"]
        for k in keys:
            cells += [f"{row[f'throughput_{k}']:.1f}", f"{row[f'speedup_{k}']:.2f}x ({row[f'speedup_cpu_{k}']:.2f}x)"]
        verdict = row.get("target_met")
        if verdict is None:
            cells += ["(reference)", ""]
        else:
            cells += ["yes" if verdict["flops_and_accuracy"] else "no",
                      " / ".join("yes" if verdict[f"speed_{k}"] else "no" for k in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Settings: " + json.dumps(result["settings"])]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data-bin/sentiment")
    p.add_argument("--lambdas", nargs=3, default=["0.03", "0.05", "0.1"])
    p.add_argument("--threads", type=int, default=1, help="torch threads while timing (training uses THREADS)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timing-examples-b1", type=int, default=300)
    p.add_argument("--topk-rate", type=float, help="top-k keep rate (default: matched to the middle lambda's FLOPs)")
    p.add_argument("--manual-threshold", type=float,
                   help="manual final threshold (default: matched to the middle lambda's FLOPs)")
    p.add_argument("--out", default="results/ltp")
    args = p.parse_args()
    baseline = f"checkpoints/baseline-{Path(args.data).name}/checkpoint_best.pt"
    env = {"DATA": args.data}

    for lam in args.lambdas:
        run(["bash", "scripts/ltp-stages.sh", "ltp", lam], env)
    middle = args.lambdas[1]
    middle_ckpt = f"{OUT_ROOT}/lambda{middle}/hard/checkpoint_best.pt"
    probe = REPO / f"{OUT_ROOT}/lambda{middle}/hard/flops.json"
    run([sys.executable, "-m", "user_dir.ltp.measure", "--data", args.data, "--model", f"ltp={middle_ckpt}",
         "--splits", "valid", "--batch-sizes", "", "--out", probe])
    target = json.loads(probe.read_text())["models"]["ltp"]["valid"]["rel_flops"]
    rate = args.topk_rate if args.topk_rate is not None else topk_rate_for(target, args.data)
    threshold = (args.manual_threshold if args.manual_threshold is not None
                 else manual_threshold_for(target, args.data, baseline, args.threads))
    print(f"LTP (lambda {middle}) spends relative FLOPs {target:.3f} on dev: top-k keep rate {rate}, "
          f"manual final threshold {threshold}", flush=True)
    run(["bash", "scripts/ltp-stages.sh", "topk", str(rate)], env)
    run(["bash", "scripts/ltp-stages.sh", "manual", str(threshold)], env)

    names = [("base", "fine-tuned MiniLM (no pruning)")]
    specs = [f"base={baseline}"]
    for lam in args.lambdas:
        names.append((f"ltp{lam}", f"LTP lambda {lam}"))
        specs.append(f"ltp{lam}={OUT_ROOT}/lambda{lam}/hard/checkpoint_best.pt")
    names.append(("masked", f"LTP lambda {middle}, masking only (original inference)"))
    specs.append(f"masked={middle_ckpt}:ltp_physical_removal=False")
    names.append(("topk", f"top-k, keep rate {rate}"))
    specs.append(f"topk={OUT_ROOT}/topk{rate}/train/checkpoint_best.pt")
    names.append(("manual", f"manual threshold {threshold}"))
    specs.append(f"manual={OUT_ROOT}/manual{threshold}/train/checkpoint_best.pt")

    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.with_suffix(".measure.json")
    cmd = [sys.executable, "-m", "user_dir.ltp.measure", "--data", args.data, "--threads", str(args.threads),
           "--repeats", str(args.repeats), "--batch-sizes", "1,32",
           "--timing-examples", f"1:{args.timing_examples_b1}", "--out", raw]
    for spec in specs:
        cmd += ["--model", spec]
    run(cmd)
    measured = json.loads(raw.read_text())
    keys = ["b1", "b32"]
    rows = rows_from(measured, names, ["valid", "test"])
    for row in rows[1:]:
        row["target_met"] = judge(row, keys)
    settings = {k: os.environ.get(k) for k in ("SOFT_EPOCHS", "HARD_EPOCHS", "LR", "HARD_LR", "THRESHOLD_LR",
                                               "TEMPERATURE", "FINAL_THRESHOLD", "REG_NORM", "THREADS")}
    settings.update(lambdas=args.lambdas, topk_keep_rate=rate, manual_threshold=threshold,
                    matched_rel_flops_dev=round(target, 4))
    result = {"task": "sentiment (Rotten-Tomatoes sentences), MiniLM-L6", "threads": args.threads,
              "repeats": args.repeats, "timing_examples_b1": args.timing_examples_b1, "batch_keys": keys,
              "targets": {"max_rel_flops": TARGET_FLOPS, "max_accuracy_drop": TARGET_DROP,
                          "min_speedup_over_flops_reduction": TARGET_SPEED},
              "settings": settings, "rows": rows, "measured": measured}
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    md = markdown(result)
    out.with_suffix(".md").write_text(md)
    raw.unlink()
    print(md)


if __name__ == "__main__":
    main()
