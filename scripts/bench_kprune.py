#!/usr/bin/env python
"""Kprune benchmark: accuracy, FLOPs, measured CPU speed-up, pruning time and peak memory over
FLOPs constraints, with and without KPWT (--sublayerwise-tuning). No retraining anywhere.

    python scripts/bench_kprune.py            # -> results/kprune.json, results/kprune.md

Every pruning run is a fresh `python -m user_dir.kprune` process (its log gives the loop time and
the process's peak memory). Accuracy is computed in this process on the dev and test splits (the
baseline checkpoint was selected on dev, so test is the headline). Speed-ups are measured here, the
pruned models and the unpruned one taking turns on the same dev batches (median of rounds).
Pruned checkpoints made with the same settings are reused (--no-reuse to prune again).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_DROP = {0.5: 1.0, 0.7: 3.0}  # points of accuracy lost, at most, without retraining
TARGET_SPEEDUP_RATIO = 0.8  # measured speed-up >= 0.8 x FLOPs reduction
TARGET_PRUNING_SECONDS = 300.0  # with 100k tokens on the 2-core CPU


def prune(args, constraint, tuning, save_dir):
    log_path = save_dir / "kprune_log.json"
    if args.reuse and log_path.exists() and (save_dir / "checkpoint_pruned.pt").exists():
        s = json.loads(log_path.read_text())["settings"]
        if (os.path.abspath(s["path"]) == os.path.abspath(args.baseline) and float(s["constraint"]) == constraint
                and int(s["num_tokens"]) == args.num_tokens and bool(s["sublayerwise_tuning"]) == tuning):
            print(f"[bench] reusing {save_dir}", flush=True)
            return json.loads(log_path.read_text())
    cmd = [sys.executable, "-m", "user_dir.kprune", args.data, "--user-dir", str(REPO / "user_dir"),
           "--path", args.baseline, "--constraint", str(constraint), "--num-tokens", str(args.num_tokens),
           "--save-dir", str(save_dir), "--no-progress-bar"]
    if tuning:
        cmd.append("--sublayerwise-tuning")
    if args.cpu:
        cmd.append("--cpu")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONWARNINGS="ignore")
    save_dir.mkdir(parents=True, exist_ok=True)
    print(f"[bench] pruning: constraint {constraint}, tuning {tuning}", flush=True)
    start = time.time()
    with open(save_dir / "kprune.log", "w") as log:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"fairseq-kprune failed ({proc.returncode}); see {save_dir / 'kprune.log'}")
    info = json.loads(log_path.read_text())
    print(f"[bench]   loop {info['loop_seconds']:.0f} s, process {time.time() - start:.0f} s, "
          f"relative FLOPs {info['relative_flops']:.3f}", flush=True)
    return info


def markdown(result):
    base = result["baseline"]
    lines = [
        "# Kprune benchmark (retraining-free structured pruning)", "",
        f"Model: fine-tuned MiniLM-L6 (`{result['baseline_path']}`), data `{result['data']}`; "
        f"{result['num_tokens']} tokens of training data per run; FLOPs model at n = "
        f"{result['avg_length']:.2f} (dev average length). CPU: {result['cpus']} cores, "
        f"{result['threads']} torch threads; load average {result['load_before']} before, "
        f"{result['load_after']} after (timings are noisy when it exceeds the core count).", "",
        f"Unpruned: test accuracy {base['test_accuracy']:.2f}, dev {base['dev_accuracy']:.2f}, "
        f"{base['mflops']:.1f} MFLOPs per sequence, {base['seq_per_s_b1']:.1f} seq/s at batch 1, "
        f"{base['seq_per_s_b32']:.1f} seq/s at batch 32.", "",
        "| removed (constraint) | KPWT | test acc | drop | dev acc | relative FLOPs | speed-up b1 | "
        "speed-up b32 | speed-up / FLOPs reduction (b32) | pruning loop s | peak RSS MB | heads per layer |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['constraint']:.1f} | {'yes' if r['tuning'] else 'no'} | {r['test_accuracy']:.2f} | "
            f"{r['drop']:+.2f} | {r['dev_accuracy']:.2f} | {r['relative_flops']:.3f} | {r['speedup_b1']:.2f}x | "
            f"{r['speedup_b32']:.2f}x | {r['speedup_ratio_b32']:.2f} | {r['loop_seconds']:.0f} | "
            f"{r['peak_rss_mb']:.0f} | {r['heads']} |")
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |")
    lines.append("")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data-bin/sentiment")
    p.add_argument("--baseline", default="checkpoints/baseline-sentiment/checkpoint_best.pt")
    p.add_argument("--constraints", default="0.4,0.5,0.6,0.7,0.8")
    p.add_argument("--num-tokens", type=int, default=100000)
    p.add_argument("--out-dir", default="checkpoints/kprune-bench")
    p.add_argument("--results", default="results")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5, help="alternating timing rounds (median)")
    p.add_argument("--no-reuse", dest="reuse", action="store_false")
    p.add_argument("--cpu", action="store_true", default=True, help="prune on the CPU (default)")
    args = p.parse_args()
    os.chdir(REPO)
    if not Path(args.baseline).is_file():
        raise SystemExit(f"bench_kprune: no fine-tuned baseline at {args.baseline}; run "
                         "scripts/finetune-baseline.sh (or scripts/demo-kprune.sh) first")
    load_before = os.getloadavg()[0]
    runs = []
    for c in [float(x) for x in args.constraints.split(",")]:
        for tuning in (False, True):
            save_dir = Path(args.out_dir) / f"c{c:.2f}-{'kpwt' if tuning else 'plain'}"
            runs.append((c, tuning, save_dir, prune(args, c, tuning, save_dir)))

    import torch
    import user_dir  # noqa: F401
    from user_dir.kprune.checkpoint import classification_head_name
    from user_dir.kprune.measure import accuracy, describe, load, speed_batches, throughput

    torch.set_num_threads(args.threads)
    base_model, task, cfg = load(args.baseline, args.data)
    head = classification_head_name(cfg)
    avg_length = runs[0][3]["avg_length"]
    base = {"dev_accuracy": accuracy(base_model, task, cfg, "valid"),
            "test_accuracy": accuracy(base_model, task, cfg, "test"), **describe(base_model, avg_length)}
    models = {"base": base_model}
    rows = []
    for c, tuning, save_dir, info in runs:
        model, m_task, m_cfg = load(str(save_dir / "checkpoint_pruned.pt"), args.data)
        key = f"{c:.2f}-{tuning}"
        models[key] = model
        test_acc = accuracy(model, m_task, m_cfg, "test")
        rows.append({
            "constraint": c, "tuning": tuning, "key": key,
            "dev_accuracy": accuracy(model, m_task, m_cfg, "valid"), "test_accuracy": test_acc,
            "drop": base["test_accuracy"] - test_acc,
            "relative_flops": info["relative_flops"], "flops_reduction": 1.0 / info["relative_flops"],
            "loop_seconds": info["loop_seconds"], "teacher_seconds": info["teacher_seconds"],
            "peak_rss_mb": info["peak_rss_mb"], "tokens": info["tokens"], "examples": info["examples"],
            **describe(model, avg_length),
        })
    for bs, limit in ((1, 48), (32, 256)):
        batches = speed_batches(task, "valid", bs, base_model.max_positions(), limit)
        speeds = throughput(models, batches, head, rounds=args.rounds)
        base[f"seq_per_s_b{bs}"] = speeds["base"]
        for r in rows:
            r[f"seq_per_s_b{bs}"] = speeds[r["key"]]
            r[f"speedup_b{bs}"] = speeds[r["key"]] / speeds["base"]
    for r in rows:
        r["speedup_ratio_b1"] = r["speedup_b1"] / r["flops_reduction"]
        r["speedup_ratio_b32"] = r["speedup_b32"] / r["flops_reduction"]

    targets = []
    for c, limit in TARGET_DROP.items():
        for tuning in (True, False):
            match = [r for r in rows if abs(r["constraint"] - c) < 1e-9 and r["tuning"] == tuning]
            if match:
                r = match[0]
                targets.append({"target": f"test accuracy drop <= {limit:g} point(s) at {int(100 * c)} % removed"
                                          f" ({'with' if tuning else 'without'} KPWT)",
                                "measured": f"{r['drop']:+.2f}", "met": r["drop"] <= limit})
    for bs in (1, 32):
        ok = [r for r in rows if r[f"speedup_ratio_b{bs}"] >= TARGET_SPEEDUP_RATIO]
        worst = min(rows, key=lambda r: r[f"speedup_ratio_b{bs}"])
        targets.append({"target": f"speed-up >= {TARGET_SPEEDUP_RATIO} x FLOPs reduction, batch {bs}",
                        "measured": f"{len(ok)}/{len(rows)} runs; lowest {worst[f'speedup_ratio_b{bs}']:.2f} "
                                    f"({int(100 * worst['constraint'])} %, KPWT {'on' if worst['tuning'] else 'off'})",
                        "met": len(ok) == len(rows)})
    slowest = max(rows, key=lambda r: r["loop_seconds"])
    targets.append({"target": f"pruning < {TARGET_PRUNING_SECONDS:.0f} s with 100000 tokens (loop only)",
                    "measured": f"max {slowest['loop_seconds']:.0f} s, min "
                                f"{min(r['loop_seconds'] for r in rows):.0f} s on {slowest['tokens']} tokens "
                                f"({slowest['examples']} examples)",
                    "met": slowest["loop_seconds"] < TARGET_PRUNING_SECONDS and slowest["tokens"] >= 100000})

    result = {"method": "kprune", "data": args.data, "baseline_path": args.baseline,
              "num_tokens": args.num_tokens, "avg_length": avg_length, "cpus": os.cpu_count(),
              "threads": torch.get_num_threads(), "load_before": round(load_before, 2),
              "load_after": round(os.getloadavg()[0], 2), "baseline": base, "rows": rows, "targets": targets}
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "kprune.json").write_text(json.dumps(result, indent=1))
    (out / "kprune.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
