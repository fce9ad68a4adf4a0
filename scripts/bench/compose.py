"""Composition: Kprune (50 %, with KPWT) then a token-pruning method on the Kprune model, against each
method alone at matched FLOPs (MiniLM-L6).

1. Kprune then LTP, sentiment sentences -> results/compose.{json,md,png}. Steps: the Kprune suite's
   50 % model (shared step); LTP's soft and hard stages on it (same recipe as the LTP suite, lambda
   COMPOSE_LAMBDA); Kprune alone at the composition's FLOPs (constraint = 1 - its relative FLOPs on
   dev); the LTP suite's learned-threshold models (LTP alone); all measured in one process. Targets:
   >= 3x fewer FLOPs with <= 1.5 points test drop; measured speed-up >= 0.8x the FLOPs reduction;
   ahead of each single method at matched FLOPs.
2. Kprune then TR-BERT, long reviews -> results/compose-trbert.{json,md,png}. Steps: the TR-BERT
   suite's fine-tuned model and its TR-BERT models (TR-BERT alone, shared steps); Kprune 50 % of the
   fine-tuned model on the reviews; TR-BERT's scores, init, RL and joint stages on the Kprune model
   (the TR-BERT suite's recipe, alpha COMPOSE_ALPHA, the Kprune model as the joint stage's teacher);
   Kprune alone at the composition's FLOPs; all scored on dev + test and timed at batch 1, 16 and 32
   in one process, as the TR-BERT suite. Same targets, on the reviews.

COMPOSE_CHAINS ("ltp trbert") selects the chains.
"""
import json
import os

import numpy as np

import kprune as kprune_suite
import ltp as ltp_suite
import trbert as trbert_suite
from common import (BENCH_ROOT, TIMING_THREADS, encoder_baseline, log, measure, prepare_encoder_data,
                    step_times_markdown, steps, write_results)
from user_dir.bench import compare
from user_dir.bench.results import markdown_table

COMPOSE_LAMBDA = os.environ.get("COMPOSE_LAMBDA", "0.05")
COMPOSE_NORM = os.environ.get("COMPOSE_NORM", "tokens")
COMPOSE_ALPHA = os.environ.get("COMPOSE_ALPHA", "1.0")
CHAINS = os.environ.get("COMPOSE_CHAINS", "ltp trbert").split()
TARGET_REDUCTION, TARGET_DROP, TARGET_SPEED = 3.0, 1.5, 0.8


def run():
    unknown = [c for c in CHAINS if c not in ("ltp", "trbert")]
    if unknown:
        raise SystemExit(f"COMPOSE_CHAINS: unknown {' '.join(unknown)}; allowed: ltp, trbert")
    if "ltp" in CHAINS:
        run_ltp(steps())  # one step list per chain: each results file lists its own steps
    if "trbert" in CHAINS:
        run_trbert(steps())


def matched_constraint(rel: float) -> str:
    """Kprune's constraint (fraction of FLOPs removed) that matches a model spending ``rel``."""
    return f"{min(0.95, round(1 - rel, 2)):.2f}"


def run_ltp(st):
    data = prepare_encoder_data(st, "sentiment")
    baseline = encoder_baseline(st, data, ltp_suite.BASE_EPOCHS)
    kp50 = str(kprune_suite.prune(st, data, baseline, "kprune", "0.5") / "checkpoint_pruned.pt")
    composed = ltp_suite.learn(st, data, kp50, f"compose/kprune50-ltp-{COMPOSE_NORM}-{COMPOSE_LAMBDA}",
                               COMPOSE_NORM, COMPOSE_LAMBDA)
    probe = measure(st, "compose/flops-probe", data, [f"base={baseline}", f"composed={composed}"],
                    settings="dev FLOPs of the composition", splits="valid", batch_sizes="")
    rel = probe["models"]["composed"]["valid"]["relative_flops"]
    constraint = matched_constraint(rel)
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


def curve_targets(comp: dict, rows: list, prefix: str) -> list:
    """One target per series named ``prefix...``: the composition ahead of that single method's
    quality interpolated at the composition's relative FLOPs (None when outside its curve)."""
    targets = []
    for norm in sorted({r["series"] for r in rows if r["series"].startswith(prefix)}):
        curve = sorted([r for r in rows if r["series"] == norm], key=lambda r: r["relative_flops"])
        xs = [r["relative_flops"] for r in curve]
        inside = xs[0] - 1e-9 <= comp["relative_flops"] <= xs[-1] + 1e-9
        at = float(np.interp(comp["relative_flops"], xs, [r["quality"] for r in curve])) if inside else None
        targets.append({"target": f"ahead of {norm} at matched FLOPs", "alone_interpolated": at,
                        "alone_flops_range": [xs[0], xs[-1]],
                        "met": None if at is None else comp["quality"] > at})
    return targets


def reduction_targets(base: dict, comp: dict, sizes) -> list:
    reduction = 1 / comp["relative_flops"]
    drop = base["quality"] - comp["quality"]
    targets = [
        {"target": f">= {TARGET_REDUCTION}x fewer FLOPs with <= {TARGET_DROP} point drop ({comp['quality_split']})",
         "reduction": round(reduction, 2), "drop": round(drop, 2),
         "met": reduction >= TARGET_REDUCTION and drop <= TARGET_DROP},
    ]
    for b in sizes:
        targets.append({"target": f"speed-up at batch {b} >= {TARGET_SPEED} x FLOPs reduction",
                        "speedup": comp[f"speedup_b{b}"], "needed": round(TARGET_SPEED * reduction, 2),
                        "met": comp[f"speedup_b{b}"] >= TARGET_SPEED * reduction})
    return targets


def targets_markdown(targets) -> list:
    md = []
    for t in targets:
        state = "outside the curve" if t["met"] is None else ("met" if t["met"] else "not met")
        md.append(f"- {t['target']}: **{state}** " + json.dumps({k: v for k, v in t.items() if k not in ("target", "met")}))
    return md


def run_trbert(st):
    data = prepare_encoder_data(st, "reviews")
    finetuned, _, alone = trbert_suite.train(st, data)
    kp_folder = kprune_suite.prune(st, data, finetuned, "kprune", "0.5", prefix="compose/reviews-kprune")
    kp50 = str(kp_folder / "checkpoint_pruned.pt")
    _, _, composed = trbert_suite.train(st, data, finetuned=kp50, finetuned_step="compose/reviews-kprune/kprune-0.5",
                                        prefix="compose/kprune50-trbert", alphas=[COMPOSE_ALPHA])
    composed = composed[COMPOSE_ALPHA]
    splits = ",".join(trbert_suite.SPLITS)
    probe = measure(st, "compose/reviews-flops-probe", data, [f"base={finetuned}", f"composed={composed}"],
                    settings="dev+test FLOPs of Kprune -> TR-BERT | " + trbert_suite.finished(
                        st, f"compose/kprune50-trbert/joint-{COMPOSE_ALPHA}"), splits=splits, batch_sizes="")
    m = probe["models"]
    rel = sum(m["composed"][s]["macs"] for s in trbert_suite.SPLITS) / sum(m["base"][s]["macs"] for s in trbert_suite.SPLITS)
    constraint = matched_constraint(rel)
    log(f"Kprune -> TR-BERT spends {rel:.3f} of the FLOPs on dev+test: Kprune alone at constraint {constraint}")
    kp_matched = str(kprune_suite.prune(st, data, finetuned, "kprune", constraint, prefix="compose/reviews-kprune")
                     / "checkpoint_pruned.pt")
    names = [("base", "fine-tuned MiniLM", "reference", "fine-tuned", finetuned),
             ("kprune50", "Kprune 50 %", "method", "Kprune 50 % (first step)", kp50),
             ("composed", f"Kprune 50 % → TR-BERT α {COMPOSE_ALPHA}", "method", "Kprune 50 % → TR-BERT", composed),
             ("kprune-matched", f"Kprune alone {round(100 * float(constraint))} %", "baseline", "Kprune alone", kp_matched)]
    names += [(f"trbert-{a}", f"TR-BERT alone α {a}", "baseline", "TR-BERT alone", path) for a, path in alone.items()]
    measured = measure(st, "compose/reviews-measure", data, [f"{k}={p}" for k, _, _, _, p in names],
                       settings="all models | " + trbert_suite.finished(
                           st, f"compose/kprune50-trbert/joint-{COMPOSE_ALPHA}",
                           *[f"trbert/joint-{a}" for a in alone]),
                       splits=splits, batch_sizes=",".join(map(str, trbert_suite.BATCH_SIZES)),
                       timing_limit=trbert_suite.TIMING_LIMIT)
    write_trbert(names, measured, st, constraint, data)


def write_trbert(names, measured, st, constraint, data):
    tokens = trbert_suite.split_tokens(data)
    rows = [{"model": label, "family": fam, "series": series,
             **trbert_suite.pooled_row(measured["models"], key, "base", tokens)} for key, label, fam, series, _ in names]
    base, comp, matched = rows[0], rows[2], rows[3]
    targets = reduction_targets(base, comp, (1, 16, 32))
    targets.append({"target": "ahead of Kprune alone at matched FLOPs", "kprune_alone": matched["quality"],
                    "kprune_alone_flops": matched["relative_flops"], "composed": comp["quality"],
                    "composed_ci95": comp["quality_ci95"], "met": comp["quality"] > matched["quality"]})
    targets += curve_targets(comp, rows, "TR-BERT alone")
    result = {"method": "compose-trbert", "task": "long movie reviews (dev+test: 300 reviews), MiniLM-L6: "
              "Kprune 50 % then TR-BERT", "protocol": measured["protocol"], "rows": rows, "targets": targets,
              "steps": st.summary(),
              "settings": {"alpha": COMPOSE_ALPHA, "kprune_matched_constraint": constraint,
                           "stages": {"epochs": trbert_suite.EPOCHS, "lr": trbert_suite.LRS,
                                      "rollouts": trbert_suite.ROLLOUTS, **trbert_suite.RECIPE},
                           "teacher": "the Kprune 50 % model", "timing_threads": TIMING_THREADS}}
    md = ["# Composition: Kprune 50 % then TR-BERT (long reviews, MiniLM-L6)\n",
          f"Reference: {base['model']}, dev+test {base['quality']:.2f} (95 % {base['quality_ci95'][0]:.1f}–"
          f"{base['quality_ci95'][1]:.1f}, {base['examples']} reviews). Quality = accuracy over dev and test "
          "together; each single method beside the composition (Kprune alone re-pruned to the matched "
          "constraint; TR-BERT alone from the TR-BERT suite, interpolated). Protocol: docs/benchmarking.md.\n",
          markdown_table(rows, "accuracy", extra=("quality_valid", "quality_test", "peak_mb")), "\n## Targets\n"]
    md += targets_markdown(targets)
    md += ["\n## Steps (wall time on this machine)\n", step_times_markdown(st.summary())]
    write_results("compose-trbert", result, "\n".join(md), "Kprune then TR-BERT vs each alone, long reviews, "
                  "MiniLM-L6", "accuracy %")


def write(names, measured, st, constraint):
    sizes = [1, 8, 32]
    rows = [{"model": label, "family": fam, "series": series, **compare.row_fields(measured["models"], key, "test", sizes)}
            for key, label, fam, series, _ in names]
    base, comp = rows[0], rows[2]
    targets = reduction_targets(base, comp, sizes)
    matched = rows[3]
    targets.append({"target": "ahead of Kprune alone at matched FLOPs", "kprune_alone": matched["quality"],
                    "kprune_alone_flops": matched["relative_flops"], "composed": comp["quality"],
                    "met": comp["quality"] > matched["quality"]})
    targets += curve_targets(comp, rows, "LTP alone")
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
    md += targets_markdown(targets)
    md += ["\n## Steps (wall time on this machine)\n", step_times_markdown(st.summary())]
    write_results("compose", result, "\n".join(md), "Kprune then LTP vs each alone, sentiment, MiniLM-L6", "accuracy %")


if __name__ == "__main__":
    run()
