"""LTP against its paper's baselines on the sentiment sentences (MiniLM-L6, fine-tuned by stock fairseq).

Steps (each resumable, see user_dir/bench/steps.py):
1. data + fine-tuned baseline (3 epochs, fairseq's RoBERTa GLUE recipe);
2. learned thresholds, both regulariser norms (``--ltp-reg-norm tokens`` and the original's
   ``padded``) at three lambdas each: soft stage (SOFT_EPOCHS) then hard stage (HARD_EPOCHS);
3. the two baselines at three operating points each, with the hard stage's budget (HARD_EPOCHS from
   the fine-tuned model): top-k (keep rate chosen analytically on the dev lengths) and the manual
   threshold (bisection on dev with the fine-tuned weights), each matched to the relative FLOPs of
   one ``tokens`` LTP model on dev;
4. every model scored and timed in one process; results/ltp.{json,md,png}.
"""
import dataclasses
import json
import os

import numpy as np

from common import (BENCH_ROOT, PY, TIMING_THREADS, TRAIN_THREADS, encoder_baseline, log, measure,
                    prepare_encoder_data, step_times_markdown, steps, write_results, yes_no)
from user_dir.bench import compare

LAMBDAS = {"tokens": os.environ.get("LTP_LAMBDAS_TOKENS", "0.02 0.05 0.1").split(),
           "padded": os.environ.get("LTP_LAMBDAS_PADDED", "0.05 0.1 0.2").split()}
SOFT_EPOCHS = int(os.environ.get("SOFT_EPOCHS", "2"))
HARD_EPOCHS = int(os.environ.get("HARD_EPOCHS", "3"))
BASE_EPOCHS = int(os.environ.get("BASE_EPOCHS", "3"))
LR, HARD_LR, THRESHOLD_LR = "2e-5", "2e-5", os.environ.get("THRESHOLD_LR", "1e-4")
TEMPERATURE, FINAL_THRESHOLD = "1e-3", "0.01"
TARGET_FLOPS, TARGET_DROP = 0.5, 1.0


def topk_rate_for(rel_flops: float, data: str, num_layers=6, d=384, d_ff=1536) -> float:
    """Keep rate whose top-k schedule spends ``rel_flops`` on the dev split (exact counts, bisection);
    top-k keeps every token in its first 3 layers, so below its floor the floor is used."""
    from user_dir.common.data_stats import example_lengths
    from user_dir.ltp import scoring
    from user_dir.ltp.flops import LayerDims, layer_macs

    n0 = example_lengths(data, "valid").astype(np.float64)
    dims = LayerDims(d, d, d_ff)

    def spend(rate):
        n_a, total = n0, 0.0
        for r in scoring.topk_keep_rates(rate, num_layers):
            n_f = np.maximum(1, np.round(n0 * r))
            total += layer_macs(dims, n_a, n_f).sum()
            n_a = n_f
        return total / (num_layers * layer_macs(dims, n0, n0).sum())

    lo, hi = -3.0, 1.0
    if spend(lo) > rel_flops:
        log(f"top-k cannot spend as little as {rel_flops:.3f} (its floor is {spend(lo):.3f}): using the floor")
        return lo
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if spend(mid) < rel_flops else (lo, mid)
    return round((lo + hi) / 2, 3)


def manual_threshold_for(rel_flops: float, data: str, baseline: str) -> float:
    """Final threshold whose unlearned schedule spends ``rel_flops`` on dev with the fine-tuned weights."""
    import torch
    from user_dir.bench import sentence

    torch.set_num_threads(int(TRAIN_THREADS))
    sm = sentence.load(baseline, data, "manual", arch="ltp_roberta_minilm")
    samples = sentence.batches(sm.task, "valid", 32)
    full = sentence.score(sentence.load(baseline, data), samples)["macs"]
    encoder = sm.encoder
    lo, hi = 0.0, 0.2
    for _ in range(10):
        mid = (lo + hi) / 2
        encoder.ltp = dataclasses.replace(encoder.ltp, final_token_threshold=mid)
        spent = sentence.score(sm, samples)["macs"] / full
        log(f"manual threshold {mid:.5f}: relative FLOPs {spent:.3f} on dev")
        lo, hi = (mid, hi) if spent > rel_flops else (lo, mid)
    return round((lo + hi) / 2, 5)


def _train_env(data, **extra):
    return {"DATA": data, "THREADS": TRAIN_THREADS, "VALIDATE": "0", **extra}


def learn(st, data: str, start: str, prefix: str, norm: str, lam: str) -> str:
    """LTP's two stages from the checkpoint ``start`` as bench steps ``<prefix>/soft`` and ``/hard``;
    returns the hard stage's best checkpoint."""
    soft_settings = (f"base={start} lambda={lam} norm={norm} epochs={SOFT_EPOCHS} lr={LR} "
                     f"thr_lr={THRESHOLD_LR} T={TEMPERATURE} F={FINAL_THRESHOLD}")
    soft = st.run(f"{prefix}/soft", ["bash", "scripts/ltp/soft.sh"], soft_settings, _train_env(
        data, SAVE_DIR=str(BENCH_ROOT / f"{prefix}/soft"), RESTORE=start, LAMBDA=lam,
        REG_NORM=norm, EPOCHS=str(SOFT_EPOCHS), LR=LR, THRESHOLD_LR=THRESHOLD_LR,
        TEMPERATURE=TEMPERATURE, FINAL_THRESHOLD=FINAL_THRESHOLD))
    hard = st.run(f"{prefix}/hard", ["bash", "scripts/ltp/hard.sh"],
                  soft_settings + f" | hard epochs={HARD_EPOCHS} lr={HARD_LR}", _train_env(
        data, SAVE_DIR=str(BENCH_ROOT / f"{prefix}/hard"), SOFT=str(soft / "checkpoint_last.pt"),
        EPOCHS=str(HARD_EPOCHS), LR=HARD_LR, FINAL_THRESHOLD=FINAL_THRESHOLD))
    return str(hard / "checkpoint_best.pt")


def learned_models(st, data: str, baseline: str):
    """(norm, lambda, hard checkpoint) of every learned-threshold run of the suite."""
    return [(norm, lam, learn(st, data, baseline, f"ltp/{norm}-{lam}", norm, lam))
            for norm, lambdas in LAMBDAS.items() for lam in lambdas]


def run():
    st = steps()
    data = prepare_encoder_data(st, "sentiment")
    baseline = encoder_baseline(st, data, BASE_EPOCHS)
    learned = learned_models(st, data, baseline)

    # operating points of the baselines: the dev FLOPs of the three `tokens` LTP models
    probe = measure(st, "ltp/flops-probe", data, [f"base={baseline}"] + [
        f"{norm}-{lam}={path}" for norm, lam, path in learned if norm == "tokens"],
        settings="dev FLOPs of the tokens models", splits="valid", batch_sizes="")
    targets = [probe["models"][f"tokens-{lam}"]["valid"]["relative_flops"] for lam in LAMBDAS["tokens"]]
    log("baseline operating points (dev relative FLOPs of LTP tokens): " + ", ".join(f"{t:.3f}" for t in targets))
    choice_file = st.dir("ltp/operating-points") / "points.json"

    def choose(folder):
        points = {"targets": targets,
                  "topk": [topk_rate_for(t, data) for t in targets],
                  "manual": [manual_threshold_for(t, data, baseline) for t in targets]}
        (folder / "points.json").write_text(json.dumps(points, indent=1))
    st.run("ltp/operating-points", choose, settings=json.dumps([round(t, 4) for t in targets]))
    points = json.loads(choice_file.read_text())
    baselines = []  # (kind, value, checkpoint)
    for rate in dict.fromkeys(points["topk"]):  # the floor may repeat: train it once
        d = st.run(f"ltp/topk{rate}", ["bash", "scripts/ltp/topk.sh"],
                   f"base={baseline} keep={rate} epochs={HARD_EPOCHS} lr={HARD_LR}", _train_env(
            data, SAVE_DIR=str(BENCH_ROOT / f"ltp/topk{rate}"), RESTORE=baseline, KEEP_RATE=str(rate),
            EPOCHS=str(HARD_EPOCHS), LR=HARD_LR))
        baselines.append(("top-k", rate, str(d / "checkpoint_best.pt")))
    for thr in points["manual"]:
        d = st.run(f"ltp/manual{thr}", ["bash", "scripts/ltp/manual-threshold.sh"],
                   f"base={baseline} F={thr} epochs={HARD_EPOCHS} lr={HARD_LR}", _train_env(
            data, SAVE_DIR=str(BENCH_ROOT / f"ltp/manual{thr}"), RESTORE=baseline, FINAL_THRESHOLD=str(thr),
            EPOCHS=str(HARD_EPOCHS), LR=HARD_LR))
        baselines.append(("manual threshold", thr, str(d / "checkpoint_best.pt")))

    # everything in one process
    names = [("base", "fine-tuned MiniLM", "reference", "fine-tuned", f"base={baseline}")]
    for norm, lam, path in learned:
        names.append((f"ltp-{norm}-{lam}", f"LTP λ {lam} ({norm})", "method", f"LTP (reg-norm {norm})",
                      f"ltp-{norm}-{lam}={path}"))
    mid_norm, mid_lam, mid_path = learned[1]
    names.append(("ltp-masked", f"LTP λ {mid_lam} ({mid_norm}), masking only (original inference)", "method",
                  "LTP masking only", f"ltp-masked={mid_path}:ltp_physical_removal=False"))
    for kind, value, path in baselines:
        key = f"{'topk' if kind == 'top-k' else 'manual'}-{value}"
        label = f"top-k, keep rate {value}" if kind == "top-k" else f"manual threshold {value}"
        names.append((key, label, "baseline", kind, f"{key}={path}"))
    measured = measure(st, "ltp/measure", data, [n[4] for n in names], settings="all models")
    write(names, measured, st, points)


def _interp(xs, ys, x):
    """Linear interpolation of a curve at x, None outside its range."""
    order = np.argsort(xs)
    xs, ys = np.asarray(xs)[order], np.asarray(ys)[order]
    if x < xs[0] - 1e-9 or x > xs[-1] + 1e-9:
        return None
    return float(np.interp(x, xs, ys))


def write(names, measured, st, points):
    sizes = [1, 8, 32]
    rows = []
    for key, label, family, series, _ in names:
        row = {"model": label, "family": family, "series": series}
        row.update(compare.row_fields(measured["models"], key, "test", sizes))
        rows.append(row)
    base = rows[0]
    verdicts = []
    for split, q in (("test", "quality"), ("valid", "quality_valid")):
        fl = "relative_flops" if split == "test" else "relative_flops_valid"
        for norm in LAMBDAS:
            curve = [r for r in rows if r["series"] == f"LTP (reg-norm {norm})"]
            for b in [r for r in rows if r["family"] == "baseline"]:
                at = _interp([r[fl] for r in curve], [r[q] for r in curve], b[fl])
                verdicts.append({"split": split, "norm": norm, "baseline": b["model"], "flops": b[fl],
                                 "baseline_quality": b[q], "ltp_quality_interpolated": at,
                                 "met": None if at is None else at >= b[q]})
    best = [r for r in rows if r["family"] == "method" and r["relative_flops"] <= TARGET_FLOPS
            and base["quality"] - r["quality"] <= TARGET_DROP]
    result = {"method": "ltp", "task": "sentiment (Rotten-Tomatoes sentences, ~26 tokens), MiniLM-L6",
              "protocol": measured["protocol"], "rows": rows,
              "settings": {"base_epochs": BASE_EPOCHS, "soft_epochs": SOFT_EPOCHS, "hard_epochs": HARD_EPOCHS,
                           "lr": LR, "hard_lr": HARD_LR, "threshold_lr": THRESHOLD_LR, "temperature": TEMPERATURE,
                           "final_threshold": FINAL_THRESHOLD, "lambdas": LAMBDAS, "operating_points": points,
                           "train_threads": TRAIN_THREADS, "timing_threads": TIMING_THREADS},
              "targets": {"ltp_at_or_above_baselines": verdicts,
                          "flops_le_0.5_with_le_1pt_drop": {"met": bool(best), "rows": [r["model"] for r in best]}},
              "steps": st.summary()}
    md = [f"# LTP on the sentiment sentences (MiniLM-L6)\n",
          f"Reference: {base['model']}, test {base['quality']:.2f} / dev {base['quality_valid']:.2f}. "
          f"Quality = test accuracy (%); relative FLOPs = encoder MACs on test / the reference's; speed-up = "
          f"median of {measured['protocol']['rounds']} interleaved rounds (min–max), "
          f"{measured['protocol']['threads']} thread(s), every model in one process "
          f"(protocol: docs/benchmarking.md).\n",
          _table(rows),
          "\n## Targets\n",
          f"- relative FLOPs ≤ {TARGET_FLOPS} with ≤ {TARGET_DROP} point test drop: "
          f"{yes_no(bool(best))}" + (f" ({', '.join(r['model'] for r in best)})" if best else ""),
          "- LTP at or above both baselines at equal FLOPs (LTP curve interpolated at each baseline's FLOPs):\n",
          "| split | LTP norm | baseline | rel. FLOPs | baseline | LTP (interp.) | |", "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        md.append(f"| {v['split']} | {v['norm']} | {v['baseline']} | {v['flops']:.3f} | {v['baseline_quality']:.2f} | "
                  + ("outside the LTP curve | — |" if v["ltp_quality_interpolated"] is None else
                     f"{v['ltp_quality_interpolated']:.2f} | {'met' if v['met'] else 'not met'} |"))
    md += ["\n## Steps (wall time on this machine)\n", step_times_markdown(st.summary()),
           "\nSettings: `" + json.dumps(result["settings"]) + "`\n"]
    write_results("ltp", result, "\n".join(md), "LTP vs top-k and manual threshold, sentiment, MiniLM-L6",
                  "accuracy %")


def _table(rows):
    from user_dir.bench.results import markdown_table
    for r in rows:
        r["dev"] = r["quality_valid"]
        r["kept/layer"] = " ".join(f"{v:.2f}" for v in r.get("kept", {}).values())
    table = markdown_table(rows, "accuracy", extra=("dev", "peak_mb", "kept/layer"))
    for r in rows:
        r.pop("dev"), r.pop("kept/layer")
    return table


if __name__ == "__main__":
    run()
