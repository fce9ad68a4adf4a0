#!/usr/bin/env python
"""TR-BERT benchmark: accuracy, relative FLOPs and measured CPU throughput (batch 1 and batched)
of the fine-tuned MiniLM and of TR-BERT at several length-penalty weights (--alpha), on the long
movie reviews. Writes results/trbert.json and results/trbert.md.

Each alpha's model comes from scripts/trbert-demo-stages.sh (cached, shared with the demo); all
models are then measured in one process (python -m user_dir.trbert.measure), interleaved, on the
test split. Target: >= 2x measured speed-up with <= 1.5 points accuracy drop.

    python scripts/bench_trbert.py [--alphas 0.5 0.75 1.0] [--threads 2] [--timing-examples 48]
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP = 2.0
TARGET_DROP = 1.5


def run(cmd, env=None):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True, env={**os.environ, **(env or {})})


def table(result):
    batch = result["batch_size"]
    lines = [
        f"# TR-BERT on long movie reviews (MiniLM-L6, {result['examples']} test examples, ~500 tokens)",
        "",
        f"Throughput: examples/s on {result['threads']} CPU threads, best of {result['repeats']} passes over "
        f"{result['timing_examples']} test examples, all models in one process. Relative FLOPs: analytic, "
        "policies included. Target: >= 2x measured speed-up with <= 1.5 points accuracy drop.",
        "",
        f"| model | accuracy | drop | rel. FLOPs | kept after 1st / 2nd point | ex/s b1 | speed-up b1 "
        f"| ex/s b{batch} | speed-up b{batch} | target met (b1 / b{batch}) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = result["rows"][0]
    for row in result["rows"]:
        kept = [v for k, v in row.items() if k.startswith("kept_l")]
        drop = base["accuracy"] - row["accuracy"]
        met = [row[f"speedup_b{b}"] >= TARGET_SPEEDUP and drop <= TARGET_DROP for b in (1, batch)]
        lines.append(
            f"| {row['model']} | {row['accuracy']:.2f} | {drop:+.2f} | {row['rel_flops']:.3f} | "
            f"{' / '.join(f'{k:.2f}' for k in kept) or '1.00'} | {row['throughput_b1']:.2f} | "
            f"{row['speedup_b1']:.2f}x | {row[f'throughput_b{batch}']:.2f} | {row[f'speedup_b{batch}']:.2f}x | "
            + ("(reference)" if row is base else " / ".join("yes" if m else "no" for m in met)) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alphas", nargs="+", default=["0.5", "0.75", "1.0"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timing-examples", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default="results/trbert")
    args = parser.parse_args()
    for alpha in args.alphas:
        run(["bash", "scripts/trbert-demo-stages.sh", alpha], env={"THREADS": str(args.threads)})
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    measure = out.with_suffix(".measure.json")
    models = ["--model", "base (fine-tuned MiniLM)=checkpoints/baseline-reviews/checkpoint_best.pt"]
    for alpha in args.alphas:
        models += ["--model", f"TR-BERT alpha {alpha}=checkpoints/trbert-demo/alpha{alpha}/joint/checkpoint_last.pt"]
    run([sys.executable, "-m", "user_dir.trbert.measure", "data-bin/reviews", "--split", "test",
         "--threads", str(args.threads), "--batch-size", str(args.batch_size),
         "--timing-examples", str(args.timing_examples), "--repeats", str(args.repeats),
         "--out", str(measure), *models])
    result = json.loads(measure.read_text())
    result["repeats"] = args.repeats
    result["alphas"] = args.alphas
    result["targets"] = {"speedup": TARGET_SPEEDUP, "max_accuracy_drop": TARGET_DROP}
    base = result["rows"][0]
    for row in result["rows"][1:]:
        drop = base["accuracy"] - row["accuracy"]
        row["accuracy_drop"] = round(drop, 2)
        row["target_met"] = {f"b{b}": row[f"speedup_b{b}"] >= TARGET_SPEEDUP and drop <= TARGET_DROP
                             for b in (1, args.batch_size)}
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    md = table(result)
    out.with_suffix(".md").write_text(md)
    measure.unlink()
    print(md)


if __name__ == "__main__":
    main()
