"""Kprune against the retraining-free method it builds on (Kwon et al.), sentiment, MiniLM-L6.

Steps: data + fine-tuned baseline (shared with LTP); then for every constraint (fraction of FLOPs to
remove) Kprune with KPWT (the method), Kprune without KPWT (ablation) and Kwon et al.'s mask search
+ rearrangement + mask tuning (``--method kwon``, the baseline), all on the same 100k-token sample
and seed, no retraining; every pruned model scored and timed in one process beside the unpruned one.
"""
import json
import os

from common import (BENCH_ROOT, TIMING_THREADS, TRAIN_THREADS, encoder_baseline, log, measure,
                    prepare_encoder_data, step_times_markdown, steps, write_results, yes_no)
from user_dir.bench import compare

CONSTRAINTS = os.environ.get("KPRUNE_CONSTRAINTS", "0.4 0.5 0.6 0.7 0.8").split()
BASE_EPOCHS = int(os.environ.get("BASE_EPOCHS", "3"))
NUM_TOKENS, SEED = "100000", "0"
TARGET_TIME_S = 180.0
VARIANTS = {  # key: (label, family, series, extra args)
    "kprune": ("Kprune", "method", "Kprune (KPWT)", ["--sublayerwise-tuning"]),
    "kprune-nokpwt": ("Kprune without KPWT", "method", "Kprune without KPWT", []),
    "kwon": ("Kwon et al.", "baseline", "Kwon et al. (mask search + rearrange + mask tuning)", ["--method", "kwon"]),
}


def kwon_available() -> bool:
    from user_dir.kprune import cli
    return "--method" in cli.get_parser().format_help()


def prune(st, data: str, baseline: str, key: str, constraint: str, prefix: str = "kprune"):
    """One fairseq-kprune run (variant ``key`` of VARIANTS) as a bench step ``prefix/key-constraint``
    (another data set or baseline needs its own prefix); returns its folder."""
    step = f"{prefix}/{key}-{constraint}"
    folder = BENCH_ROOT / step
    cmd = ["fairseq-kprune", data, "--user-dir", "user_dir", "--path", baseline, "--constraint", constraint,
           "--num-tokens", NUM_TOKENS, "--seed", SEED, "--batch-size", "32", "--save-dir", str(folder),
           "--cpu", "--no-progress-bar"] + VARIANTS[key][3]
    st.run(step, cmd, settings=" ".join(cmd[3:]),
           env={"OMP_NUM_THREADS": TRAIN_THREADS, "MKL_NUM_THREADS": TRAIN_THREADS})
    return folder


def run():
    st = steps()
    data = prepare_encoder_data(st, "sentiment")
    baseline = encoder_baseline(st, data, BASE_EPOCHS)
    variants = {k: v for k, v in VARIANTS.items() if k != "kwon" or kwon_available()}
    if "kwon" not in variants:
        log("Kwon et al.'s baseline is not available in this checkout (fairseq-kprune --method kwon): skipped")
    pruned = []  # (variant, constraint, folder)
    for c in CONSTRAINTS:
        for key in variants:
            pruned.append((key, c, prune(st, data, baseline, key, c)))
    specs = [f"base={baseline}"] + [f"{key}-{c}={folder / 'checkpoint_pruned.pt'}" for key, c, folder in pruned]
    measured = measure(st, "kprune/measure", data, specs, settings="all models")
    write(pruned, measured, st)


def write(pruned, measured, st):
    sizes = [1, 8, 32]
    rows = [{"model": "fine-tuned MiniLM", "family": "reference", "series": "fine-tuned",
             **compare.row_fields(measured["models"], "base", "test", sizes)}]
    for key, c, folder in pruned:
        label, family, series, _ = VARIANTS[key]
        info = json.loads((folder / "kprune_log.json").read_text())
        row = {"model": f"{label} {round(100 * float(c))} %", "family": family, "series": series,
               "constraint": float(c), **compare.row_fields(measured["models"], f"{key}-{c}", "test", sizes),
               "pruning_seconds": round(info.get("loop_seconds", info.get("seconds", 0.0)), 1),
               "heads": info.get("encoder_layer_heads"), "ffn": info.get("encoder_layer_ffn_dims")}
        rows.append(row)
    base = rows[0]

    def drop(r):
        return round(base["quality"] - r["quality"], 2)

    by = {(r["series"], r.get("constraint")): r for r in rows}
    targets = []
    for c, limit in ((0.5, 1.0), (0.7, 3.0)):
        r = by.get(("Kprune (KPWT)", c))
        if r:
            targets.append({"target": f"<= {limit} point test drop at {int(c * 100)} %", "drop": drop(r),
                            "met": drop(r) <= limit})
    ahead = []
    for c in sorted({r.get("constraint") for r in rows if r.get("constraint")}):
        k, b = by.get(("Kprune (KPWT)", c)), by.get((VARIANTS["kwon"][2], c))
        if k and b:
            ahead.append({"constraint": c, "kprune": k["quality"], "kwon": b["quality"], "met": k["quality"] > b["quality"]})
    if ahead:
        targets.append({"target": "ahead of Kwon et al. at every constraint", "detail": ahead,
                        "met": all(a["met"] for a in ahead)})
    else:
        targets.append({"target": "ahead of Kwon et al. at every constraint", "met": None,
                        "detail": "the baseline was not run"})
    times = [r["pruning_seconds"] for r in rows if r["series"] == "Kprune (KPWT)"]
    if times:
        targets.append({"target": f"pruning <= {TARGET_TIME_S:.0f} s (loop, 2 threads)", "max_s": max(times),
                        "min_s": min(times), "met": max(times) <= TARGET_TIME_S})
    result = {"method": "kprune", "task": "sentiment (Rotten-Tomatoes sentences), MiniLM-L6, no retraining",
              "protocol": measured["protocol"], "rows": rows, "targets": targets, "steps": st.summary(),
              "settings": {"constraints": CONSTRAINTS, "num_tokens": NUM_TOKENS, "seed": SEED,
                           "base_epochs": BASE_EPOCHS, "prune_threads": TRAIN_THREADS,
                           "timing_threads": TIMING_THREADS}}
    from user_dir.bench.results import markdown_table
    md = ["# Kprune vs Kwon et al. on the sentiment sentences (MiniLM-L6, no retraining)\n",
          f"Reference: fine-tuned MiniLM, test {base['quality']:.2f} / dev {base['quality_valid']:.2f}. Constraint = "
          "fraction of the encoder FLOPs removed (Kprune's FLOPs model); every method on the same 100k-token "
          f"sample (seed {SEED}). Quality = test accuracy; speed-up = median of {measured['protocol']['rounds']} "
          f"interleaved rounds (min–max), {measured['protocol']['threads']} thread(s), one process "
          "(protocol: docs/benchmarking.md).\n",
          markdown_table(rows, "accuracy", extra=("quality_valid", "pruning_seconds", "peak_mb")),
          "\n## Targets\n"]
    for t in targets:
        state = "not run" if t["met"] is None else ("met" if t["met"] else "not met")
        md.append(f"- {t['target']}: **{state}** " + json.dumps({k: v for k, v in t.items()
                                                                  if k not in ("target", "met")}))
    md += ["\n## Steps (wall time on this machine)\n", step_times_markdown(st.summary())]
    write_results("kprune", result, "\n".join(md), "Kprune vs Kwon et al., sentiment, MiniLM-L6, no retraining",
                  "accuracy %")


if __name__ == "__main__":
    run()
