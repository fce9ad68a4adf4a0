"""Composition: Kprune (50 %, with KPWT) then LTP on the Kprune model, against each method alone at
matched FLOPs, on the sentiment sentences (MiniLM-L6).

Steps: the Kprune suite's 50 % model (shared step); LTP's soft and hard stages on it (same recipe as
the LTP suite, lambda COMPOSE_LAMBDA); Kprune alone at the composition's FLOPs (constraint = 1 - its
relative FLOPs on dev); the LTP suite's learned-threshold models (LTP alone); all measured in one
process. Targets: >= 3x fewer FLOPs with <= 1.5 points test drop; measured speed-up >= 0.8x the FLOPs
reduction; ahead of each single method at matched FLOPs.
"""
import json
import os

import numpy as np

import kprune as kprune_suite
import ltp as ltp_suite
from common import (BENCH_ROOT, TIMING_THREADS, encoder_baseline, log, measure, prepare_encoder_data,
                    step_times_markdown, steps, write_results)
from user_dir.bench import compare
from user_dir.bench.results import markdown_table

COMPOSE_LAMBDA = os.environ.get("COMPOSE_LAMBDA", "0.05")
COMPOSE_NORM = os.environ.get("COMPOSE_NORM", "tokens")
TARGET_REDUCTION, TARGET_DROP, TARGET_SPEED = 3.0, 1.5, 0.8


def run():
    st = steps()
    data = prepare_encoder_data(st, "sentiment")
    baseline = encoder_baseline(st, data, ltp_suite.BASE_EPOCHS)
    kp50 = str(kprune_suite.prune(st, data, baseline, "kprune", "0.5") / "checkpoint_pruned.pt")
    composed = ltp_suite.learn(st, data, kp50, f"compose/kprune50-ltp-{COMPOSE_NORM}-{COMPOSE_LAMBDA}",
                               COMPOSE_NORM, COMPOSE_LAMBDA)
    probe = measure(st, "compose/flops-probe", data, [f"base={baseline}", f"composed={composed}"],
                    settings="dev FLOPs of the composition", splits="valid", batch_sizes="")
    rel = probe["models"]["composed"]["valid"]["relative_flops"]
    constraint = f"{min(0.95, round(1 - rel, 2)):.2f}"
    log(f"composition spends {rel:.3f} of the FLOPs on dev: Kprune alone at constraint {constraint}")
    kp_matched = str(kprune_suite.prune(st, data, baseline, "kprune", constraint) / "checkpoint_pruned.pt")
    ltp_alone = [(norm, lam, path) for norm, lam, path in ltp_suite.learned_models(st, data, baseline)]
    names = [("base", "fine-tuned MiniLM", "reference", "fine-tuned", baseline),
             ("kprune50", "Kprune 50 %", "method", "Kprune 50 % (first step)", kp50),
             ("composed", f"Kprune 50 % → LTP λ {COMPOSE_LAMBDA} ({COMPOSE_NORM})", "method", "Kprune 50 % → LTP", composed),
             ("kprune-matched", f"Kprune alone {round(100 * float(constraint))} %", "baseline", "Kprune alone", kp_matched)]
    for norm, lam, path in ltp_alone:
        names.append((f"ltp-{norm}-{lam}", f"LTP alone λ {lam} ({norm})", "baseline", f"LTP alone ({norm})", path))
    measured = measure(st, "compose/measure", data, [f"{k}={p}" for k, _, _, _, p in names], settings="all models")
    write(names, measured, st, constraint)


def write(names, measured, st, constraint):
    sizes = [1, 8, 32]
    rows = [{"model": label, "family": fam, "series": series, **compare.row_fields(measured["models"], key, "test", sizes)}
            for key, label, fam, series, _ in names]
    base, comp = rows[0], rows[2]
    reduction = 1 / comp["relative_flops"]
    drop = base["quality"] - comp["quality"]
    targets = [
        {"target": f">= {TARGET_REDUCTION}x fewer FLOPs with <= {TARGET_DROP} point test drop",
         "reduction": round(reduction, 2), "drop": round(drop, 2),
         "met": reduction >= TARGET_REDUCTION and drop <= TARGET_DROP},
    ]
    for b in sizes:
        targets.append({"target": f"speed-up at batch {b} >= {TARGET_SPEED} x FLOPs reduction",
                        "speedup": comp[f"speedup_b{b}"], "needed": round(TARGET_SPEED * reduction, 2),
                        "met": comp[f"speedup_b{b}"] >= TARGET_SPEED * reduction})
    matched = rows[3]
    targets.append({"target": "ahead of Kprune alone at matched FLOPs", "kprune_alone": matched["quality"],
                    "kprune_alone_flops": matched["relative_flops"], "composed": comp["quality"],
                    "met": comp["quality"] > matched["quality"]})
    for norm in sorted({r["series"] for r in rows if r["series"].startswith("LTP alone")}):
        curve = sorted([r for r in rows if r["series"] == norm], key=lambda r: r["relative_flops"])
        xs = [r["relative_flops"] for r in curve]
        inside = xs[0] - 1e-9 <= comp["relative_flops"] <= xs[-1] + 1e-9
        at = float(np.interp(comp["relative_flops"], xs, [r["quality"] for r in curve])) if inside else None
        targets.append({"target": f"ahead of {norm} at matched FLOPs", "ltp_alone_interpolated": at,
                        "ltp_alone_flops_range": [xs[0], xs[-1]],
                        "met": None if at is None else comp["quality"] > at})
    result = {"method": "compose", "task": "sentiment, MiniLM-L6: Kprune 50 % then LTP", "protocol": measured["protocol"],
              "rows": rows, "targets": targets, "steps": st.summary(),
              "settings": {"lambda": COMPOSE_LAMBDA, "norm": COMPOSE_NORM, "kprune_matched_constraint": constraint,
                           "soft_epochs": ltp_suite.SOFT_EPOCHS, "hard_epochs": ltp_suite.HARD_EPOCHS,
                           "timing_threads": TIMING_THREADS}}
    md = ["# Composition: Kprune 50 % then LTP (sentiment, MiniLM-L6)\n",
          f"Reference: {base['model']}, test {base['quality']:.2f}. Each single method beside it at the "
          "composition's FLOPs (Kprune alone re-pruned to the matched constraint; LTP alone from the LTP "
          "suite, interpolated). Protocol: docs/benchmarking.md.\n",
          markdown_table(rows, "accuracy", extra=("quality_valid", "peak_mb")), "\n## Targets\n"]
    for t in targets:
        state = "outside the curve" if t["met"] is None else ("met" if t["met"] else "not met")
        md.append(f"- {t['target']}: **{state}** " + json.dumps({k: v for k, v in t.items() if k not in ("target", "met")}))
    md += ["\n## Steps (wall time on this machine)\n", step_times_markdown(st.summary())]
    write_results("compose", result, "\n".join(md), "Kprune then LTP vs each alone, sentiment, MiniLM-L6", "accuracy %")


if __name__ == "__main__":
    run()
