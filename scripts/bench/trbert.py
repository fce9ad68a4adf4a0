"""TR-BERT against its two no-RL baselines at the same kept ratio, on the long reviews (MiniLM-L6).

Steps (each resumable, see user_dir/bench/steps.py; the TR-BERT stages continue from their
checkpoint_last.pt, scripts/trbert/lib.sh):
1. data (1,200 / 150 / 150 reviews of ~500 WordPiece tokens) + the fine-tuned baseline with the
   TR-BERT demo's settings (batch 8 x update-freq 2, lr 1e-4, no attention dropout) for 4 epochs;
2. residual-strategy scores of the training set from the fine-tuned model (``--do_eval_grad``);
3. policy initialisation (``--train_init``): the policies fitted to the residual-score ranks,
   encoder frozen, shared by every alpha;
4. per alpha: policy-only RL (``--train_rl``, guided for the first half) then joint training with
   the fine-tuned model as frozen teacher (``--train_both --train_teacher``); the original's recipe
   (lr 3e-5, batch 8 x grad-accum 4, warm-up 10 %, 8 rollouts), one epoch each by default, except
   that the policy-only stages (init, RL) use lr 1e-2 (below: 38 updates an epoch here, not ~780);
5. the kept ratio r_w of each alpha's TR-BERT model at each reduction point on dev+test
   (``python -m user_dir.trbert.keep_ratios``);
6. the baselines at those ratios, measured without any training: (a) the residual strategy alone,
   the init stage's policy keeping the top round(r_w n) tokens by probability
   (``--trbert-select policy_topk``); (b) the fine-tuned model keeping the round(r_w n) tokens that
   received the most attention in the layer before each point (``--trbert-select attention_topk``);
7. every model scored (dev + test) and timed (batch 1, 16 and 32) in one process by the harness;
8. McNemar's exact test on the same 300 reviews: each TR-BERT model against its two baselines and
   the reference (``python -m user_dir.bench.paired_accuracy``); results/trbert.{json,md,png}.

Knobs (env): TRBERT_ALPHAS ("0.5 1.0 2.0"), TRBERT_BASE_EPOCHS (4), TRBERT_INIT_EPOCHS,
TRBERT_RL_EPOCHS, TRBERT_JOINT_EPOCHS (1 each), TRBERT_INIT_LR, TRBERT_RL_LR (1e-2 each),
TRBERT_JOINT_LR (3e-5), TRBERT_ROLLOUTS (8), TRBERT_TIMING_LIMIT ("1:48,16:48,32:64"), THREADS, BENCH_THREADS,
BENCH_ROUNDS.
"""
import json
import os
from pathlib import Path

from common import (PY, TIMING_THREADS, TRAIN_THREADS, encoder_baseline, log, measure,
                    prepare_encoder_data, step_times_markdown, steps, write_results, yes_no)
from user_dir.bench import compare
from user_dir.bench.results import binomial_interval

ALPHAS = os.environ.get("TRBERT_ALPHAS", "0.5 1.0 2.0").split()
# 4 epochs (~27 min): after 2 the model was still climbing (dev 62.7 -> 79.3, test 74.7), and a
# reference that has not learned the task cannot show whether token reduction keeps accuracy
BASE_EPOCHS = int(os.environ.get("TRBERT_BASE_EPOCHS", "4"))
# the TR-BERT demo's fine-tuning (scripts/demo/trbert.sh, scripts/trbert/demo-stages.sh): at lr 5e-5
# and 150 updates MiniLM's <s> head was still at chance; attention dropout off (its CPU kernel)
BASE_ENV = {"BATCH": "8", "UPDATE_FREQ": "2", "LR": "1e-4",
            "EXTRA_ARGS": "--attention-dropout 0.0 --log-interval 10"}
EPOCHS = {stage: int(os.environ.get(f"TRBERT_{stage.upper()}_EPOCHS", "1")) for stage in ("init", "rl", "joint")}
# The recipe's lr 3e-5 is for ~780 updates an epoch (IMDB, 25k reviews); 1,200 reviews give 38. At
# 3e-5 the fresh policies did not move in the policy-only stages (init loss flat at 0.721; RL kept
# 0.50 / 0.25 of the tokens, i.e. Bernoulli(0.5) sampling); at 1e-3 barely (init 0.72 -> 0.67, RL
# kept 0.54/0.25 -> 0.55/0.24); at 1e-2 the init fit levels off (0.54) within the epoch and RL (alpha
# 1) trades tokens for loss (kept 0.53/0.33 -> 0.39/0.23, reward -0.56 -> -0.49). The joint stage
# trains the encoder too and keeps the recipe's 3e-5.
DEFAULT_LRS = {"init": "1e-2", "rl": "1e-2", "joint": "3e-5"}
LRS = {stage: os.environ.get(f"TRBERT_{stage.upper()}_LR", lr) for stage, lr in DEFAULT_LRS.items()}
ROLLOUTS = os.environ.get("TRBERT_ROLLOUTS", "8")
RECIPE = {"BATCH": "8", "UPDATE_FREQ": "4", "WARMUP_RATIO": "0.1", "WEIGHT_DECAY": "0", "CLIP_NORM": "1.0",
          "DROPOUT": "0.1",
          # as the demo: attention dropout off (its CPU kernel costs ~10x the attention) and the
          # layers below the first reduction point run once per example for the K rollouts
          "ATTENTION_DROPOUT": "0", "EXTRA_ARGS": "--trbert-share-prefix",
          # an interruption loses at most 5 updates
          "SAVE_INTERVAL_UPDATES": "5"}
GUIDE_RATE = "0.5"
SPLITS = ("valid", "test")
BATCH_SIZES = [1, 16, 32]
TIMING_LIMIT = os.environ.get("TRBERT_TIMING_LIMIT", "1:48,16:48,32:64")
TARGET_SPEEDUP, TARGET_DROP = 2.0, 1.5
SERIES = {"method": "TR-BERT (RL + joint)", "init": "residual strategy, no RL (init policy, top-k)",
          "attn": "top-k by received attention (fine-tuned model)"}


def _stage_env(data, finetuned, save_dir, stage, **extra):
    return {"DATA": data, "THREADS": TRAIN_THREADS, "VALIDATE": "0",
            "FINETUNED": finetuned, "SAVE_DIR": str(save_dir), "LR": LRS[stage], "EPOCHS": str(EPOCHS[stage]),
            **RECIPE, **extra}


def _settings(env):
    return " ".join(f"{k}={v}" for k, v in sorted(env.items()) if k not in ("SAVE_DIR", "THREADS"))


def _stage(st, name, script, env, upstream):
    folder = st.run(name, ["bash", f"scripts/trbert/{script}"], settings=_settings(env) + " | " +
                    finished(st, *upstream), env=env)
    for extra in folder.glob("checkpoint_*_*.pt"):  # the mid-epoch checkpoints of an interrupted run
        extra.unlink()
    return folder


def _baseline_step(data):
    return f"{Path(data).name}/baseline"  # common.encoder_baseline's step


def finished(st, *names):
    """When the upstream steps finished: a rerun of one of them makes the downstream steps rerun."""
    return " ".join(f"{n}@{st.times[n].get('finished')}" for n in names)


def train(st, data, finetuned=None, finetuned_step=None, prefix="trbert", alphas=None):
    """Every training step of the suite; returns (fine-tuned, init checkpoint, {alpha: joint checkpoint}).

    ``finetuned``/``finetuned_step``: another starting model (e.g. a Kprune checkpoint) and the step
    that wrote it, instead of the suite's fine-tuned baseline; ``prefix`` names the steps, so that
    another chain keeps its own folders; ``alphas`` defaults to TRBERT_ALPHAS. The starting model is
    also the joint stage's teacher.
    """
    if finetuned is None:
        finetuned, finetuned_step = encoder_baseline(st, data, BASE_EPOCHS, BASE_ENV), _baseline_step(data)
    scores_dir = st.dir(f"{prefix}/scores")
    scores_env = {"DATA": data, "THREADS": TRAIN_THREADS, "FINETUNED": finetuned,
                  "SCORES": str(scores_dir / "scores.pt"), "SPLIT": "train", "SCORE_BATCH": "8"}
    st.run(f"{prefix}/scores", ["bash", "scripts/trbert/scores.sh"],
           settings=_settings(scores_env) + " | " + finished(st, finetuned_step), env=scores_env)
    scores = str(scores_dir / "scores.pt")
    init = _stage(st, f"{prefix}/init", "init.sh", _stage_env(data, finetuned, st.dir(f"{prefix}/init"), "init",
                                                                SCORES=scores), [f"{prefix}/scores"])
    joints = {}
    for alpha in alphas or ALPHAS:
        rl = _stage(st, f"{prefix}/rl-{alpha}", "rl.sh", _stage_env(
            data, finetuned, st.dir(f"{prefix}/rl-{alpha}"), "rl", INIT_FROM=str(init / "checkpoint_last.pt"),
            SCORES=scores, ROLLOUTS=ROLLOUTS, ALPHA=alpha, GUIDE_RATE=GUIDE_RATE), [f"{prefix}/init"])
        joint = _stage(st, f"{prefix}/joint-{alpha}", "joint.sh", _stage_env(
            data, finetuned, st.dir(f"{prefix}/joint-{alpha}"), "joint", INIT_FROM=str(rl / "checkpoint_last.pt"),
            TEACHER=finetuned, KD="1", ROLLOUTS=ROLLOUTS, ALPHA=alpha, GUIDE_RATE="0"), [f"{prefix}/rl-{alpha}"])
        joints[alpha] = str(joint / "checkpoint_last.pt")
    return finetuned, str(init / "checkpoint_last.pt"), joints


def kept_ratios(st, data, joints):
    """{alpha: [r_1, r_2]}: each TR-BERT model's kept ratio per reduction point on dev+test."""
    folder = st.dir("trbert/keep-ratios")
    cmd = [PY, "-m", "user_dir.trbert.keep_ratios", data, "--splits", ",".join(SPLITS),
           "--out", str(folder / "ratios.json")]
    for alpha, path in joints.items():
        cmd += ["--model", f"{alpha}={path}"]
    st.run("trbert/keep-ratios", cmd, settings=" ".join(cmd[3:]) + " | " + finished(
        st, *[f"trbert/joint-{a}" for a in joints]), env={"OMP_NUM_THREADS": TRAIN_THREADS})
    models = json.loads((folder / "ratios.json").read_text())["models"]
    return {alpha: [round(r, 4) for r in models[alpha]["keep_ratios"]] for alpha in joints}, models


def model_table(finetuned, init, joints, ratios):
    """(key, label, family, series, alpha, spec) of every measured model; the first is the reference."""
    names = [("base", "fine-tuned MiniLM", "reference", "fine-tuned", None, f"base={finetuned}")]
    for alpha in joints:
        r = ",".join(f"{x:.4f}" for x in ratios[alpha])
        names += [
            (f"trbert-{alpha}", f"TR-BERT α {alpha}", "method", SERIES["method"], alpha, f"trbert-{alpha}={joints[alpha]}"),
            (f"init-topk-{alpha}", f"init policy top-k at α {alpha}'s ratios", "baseline", SERIES["init"], alpha,
             f"init-topk-{alpha}={init}:trbert_select=policy_topk,trbert_keep_ratios='{r}'"),
            (f"attn-topk-{alpha}", f"attention top-k at α {alpha}'s ratios", "baseline", SERIES["attn"], alpha,
             f"attn-topk-{alpha}={finetuned}:arch=trbert_roberta_minilm,trbert_select=attention_topk,"
             f"trbert_keep_ratios='{r}'"),
        ]
    return names


def run():
    st = steps()
    data = prepare_encoder_data(st, "reviews")
    finetuned, init, joints = train(st, data)
    ratios, ratio_details = kept_ratios(st, data, joints)
    for alpha in joints:
        log(f"α {alpha}: TR-BERT keeps {', '.join(f'{r:.3f}' for r in ratios[alpha])} of the active tokens "
            f"at the reduction points (dev+test); the baselines get the same ratios")
    names = model_table(finetuned, init, joints, ratios)
    measured = measure(st, "trbert/measure", data, [n[5] for n in names],
                       settings="all models | " + finished(st, _baseline_step(data), "trbert/init",
                                                            *[f"trbert/joint-{a}" for a in joints]),
                       splits=",".join(SPLITS), batch_sizes=",".join(map(str, BATCH_SIZES)), timing_limit=TIMING_LIMIT)
    paired = significance(st, data, names, list(joints))
    write(names, measured, st, ratios, ratio_details, data, paired)


def significance(st, data, names, alphas):
    """McNemar's exact test on the pooled dev+test reviews: each TR-BERT model against its two
    baselines and against the reference (user_dir.bench.paired_accuracy). The Wilson intervals of
    the table are per model; models that agree on most reviews are compared on the reviews where
    they differ."""
    folder = st.dir("trbert/significance")
    cmd = [PY, "-m", "user_dir.bench.paired_accuracy", data, "--splits", ",".join(SPLITS),
           "--threads", str(TRAIN_THREADS), "--out", str(folder / "paired.json")]
    for n in names:
        cmd += ["--model", n[5]]
    for alpha in alphas:
        for other in (f"init-topk-{alpha}", f"attn-topk-{alpha}", "base"):
            cmd += ["--pair", f"trbert-{alpha}:{other}"]
    st.run("trbert/significance", cmd, settings=" ".join(cmd[3:]) + " | " + finished(st, "trbert/measure"),
           env={"OMP_NUM_THREADS": str(TRAIN_THREADS)})
    return json.loads((folder / "paired.json").read_text())


def _paired_lookup(paired, rows_by_key):
    """{(a, b): pair} of the significance step, after checking that its accuracies are the harness's
    (the same models on the same reviews must give the same predictions)."""
    if paired is None:
        return {}
    for key, row in rows_by_key.items():
        got = paired["accuracy"].get(key)
        if got is None or abs(got - row["quality"]) > 0.01:
            raise RuntimeError(f"trbert/significance: {key} scores {got} there but {row['quality']} in "
                               "trbert/measure; rerun both steps (delete their folders)")
    return {(p["a"], p["b"]): p for p in paired["pairs"]}


def split_tokens(data):
    from user_dir.common.data_stats import example_lengths
    return {split: float(example_lengths(data, split, max_positions=512).sum()) for split in SPLITS}


def pooled_row(measured: dict, key: str, ref: str, tokens: dict) -> dict:
    """The results row of one model: quality, FLOPs and kept tokens over dev+test together, the
    per-split figures beside them, speed-ups (test batches) and peak memory."""
    m, base = measured[key], measured[ref]
    row = compare.row_fields(measured, key, "test", BATCH_SIZES)
    row["quality_test"], row["relative_flops_test"] = row.pop("quality"), row.pop("relative_flops")
    row.pop("kept", None)
    correct = sum(round(m[s]["accuracy"] * m[s]["examples"] / 100) for s in SPLITS)
    total = sum(m[s]["examples"] for s in SPLITS)
    row.update(quality=round(100.0 * correct / total, 2), quality_split="+".join(("dev", "test")),
               correct=correct, examples=total, quality_ci95=list(binomial_interval(correct, total)),
               relative_flops=round(sum(m[s]["macs"] for s in SPLITS) / sum(base[s]["macs"] for s in SPLITS), 4))
    points = sorted({k for s in SPLITS for k in m[s] if k.startswith("kept_l")}, key=lambda k: int(k[len("kept_l"):]))
    if points:
        row["kept"] = {k: round(sum(m[s][k] * tokens[s] for s in SPLITS) / sum(tokens.values()), 4) for k in points}
    return row


def write(names, measured, st, ratios, ratio_details, data, paired=None):
    models = measured["models"]
    tokens = split_tokens(data)
    rows = []
    for key, label, family, series, alpha, _ in names:
        row = {"model": label, "family": family, "series": series}
        row.update(pooled_row(models, key, "base", tokens))
        if alpha is not None:
            row["alpha"] = float(alpha)
            row["keep_ratios"] = ratios[alpha]  # per point, of the active tokens (TR-BERT's own, measured)
        if family == "method" and "padding_b32" in ratio_details.get(alpha, {}):
            row["padding_b32"] = [round(x, 3) for x in ratio_details[alpha]["padding_b32"]]
        rows.append(row)
    base = rows[0]
    by_key = {n[0]: r for n, r in zip(names, rows)}
    pairs = _paired_lookup(paired, by_key)

    def mcnemar(a, b):
        p = pairs.get((a, b))
        return {} if p is None else {"p_mcnemar": p["p"], "only_trbert_right": p["a_only"],
                                     "only_other_right": p["b_only"]}
    verdicts, comparisons = [], []
    for alpha in ALPHAS:
        tr = by_key[f"trbert-{alpha}"]
        drop = base["quality"] - tr["quality"]
        verdicts.append({"alpha": alpha, "drop": round(drop, 2), **mcnemar(f"trbert-{alpha}", "base"),
                         **{f"met_b{b}": tr[f"speedup_b{b}"] >= TARGET_SPEEDUP and drop <= TARGET_DROP for b in (1, 16)}})
        for kind in ("init", "attn"):
            key = f"{kind}-topk-{alpha}"
            b = by_key[key]
            comparisons.append({"alpha": alpha, "baseline": b["model"], "trbert": tr["quality"],
                                "trbert_ci95": tr["quality_ci95"], "baseline_quality": b["quality"],
                                "baseline_ci95": b["quality_ci95"], "difference": round(tr["quality"] - b["quality"], 2),
                                "trbert_flops": tr["relative_flops"], "baseline_flops": b["relative_flops"],
                                **mcnemar(f"trbert-{alpha}", key)})
    settings = {
        "alphas": ALPHAS, "baseline": {"epochs": BASE_EPOCHS, **BASE_ENV},
        "stages": {"epochs": EPOCHS, "lr": LRS, "rollouts": ROLLOUTS, "rl_guide_rate": GUIDE_RATE,
                   "joint": "KD from the fine-tuned model (T = 1), guide rate 0", **RECIPE},
        "residual_scores": "file, train split, from the fine-tuned model (gradient at h_ceil(3N/4))",
        "keep_ratios": {"splits": list(SPLITS), "per_alpha": ratios,
                        "details": {a: {k: v for k, v in d.items() if k != "splits"} for a, d in ratio_details.items()}},
        "batch_sizes": BATCH_SIZES, "timing_limit": TIMING_LIMIT,
        "train_threads": TRAIN_THREADS, "timing_threads": TIMING_THREADS,
    }
    result = {"method": "trbert", "task": "long movie reviews (dev+test: 300 reviews of ~500 tokens), MiniLM-L6",
              "protocol": measured["protocol"], "rows": rows, "settings": settings,
              "targets": {"speedup_ge_2x_b1_b16_with_le_1.5pt_drop": verdicts, "vs_baselines_same_ratio": comparisons},
              "steps": st.summary()}
    proto = measured["protocol"]
    md = ["# TR-BERT vs its no-RL baselines at the same kept ratio (long reviews, MiniLM-L6)\n",
          f"Reference: {base['model']}, dev+test {base['quality']:.2f} "
          f"(95 % {base['quality_ci95'][0]:.1f}–{base['quality_ci95'][1]:.1f}, {base['examples']} reviews). "
          "Quality = accuracy (%) over dev and test together; relative FLOPs = encoder MACs (policies "
          "included where they run) / the reference's on the same reviews; speed-up = median of "
          f"{proto['rounds']} interleaved rounds (min–max) on the test reviews at batch 1, 16 and 32, "
          f"{proto['threads']} thread(s), every model in one process (protocol: docs/benchmarking.md). "
          "Each baseline keeps, per example and reduction point, round(r·n) of its n active tokens with "
          "r the ratio the TR-BERT model of the same α keeps on dev+test. Padding b32: share of the slots "
          "of the batches of 32 after each reduction point that no kept token fills (the policy keeps a "
          "different count per review; a batch runs at its longest).\n",
          _table(rows),
          "\n## Targets\n",
          f"- ≥ {TARGET_SPEEDUP:g}x measured speed-up at batch 1 and 16 with ≤ {TARGET_DROP} points drop (dev+test):\n",
          "| α | drop | b1 | b16 | reviews only TR-BERT / only the reference gets right | p (McNemar) |",
          "|---|---|---|---|---|---|"]
    for v in verdicts:
        md.append(f"| {v['alpha']} | {v['drop']:+.2f} | {yes_no(v['met_b1'])} | {yes_no(v['met_b16'])} | "
                  f"{_discordant(v)} |")
    md += ["\n- TR-BERT against each baseline at the same kept ratios (dev+test accuracy, 95 % Wilson intervals; "
           "p: McNemar's exact test on the same reviews, user_dir/bench/paired_accuracy.py):\n",
           "| α | baseline | TR-BERT | baseline | TR-BERT − baseline | reviews only TR-BERT / only the baseline "
           "gets right | p (McNemar) | rel. FLOPs (TR-BERT / baseline) |",
           "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        md.append(f"| {c['alpha']} | {c['baseline']} | {c['trbert']:.2f} ({c['trbert_ci95'][0]:.1f}–"
                  f"{c['trbert_ci95'][1]:.1f}) | {c['baseline_quality']:.2f} ({c['baseline_ci95'][0]:.1f}–"
                  f"{c['baseline_ci95'][1]:.1f}) | {c['difference']:+.2f} | {_discordant(c)} | "
                  f"{c['trbert_flops']:.3f} / {c['baseline_flops']:.3f} |")
    md += ["\n## Steps (wall time on this machine)\n", step_times_markdown(st.summary()),
           "\nSettings: `" + json.dumps(settings) + "`\n"]
    write_results("trbert", result, "\n".join(md), "TR-BERT vs residual-strategy and attention top-k at the "
                  "same kept ratios, long reviews, MiniLM-L6", "accuracy %")


def _discordant(entry) -> str:
    """'a / b | p' cells of a comparison, or blanks without the significance step."""
    if "p_mcnemar" not in entry:
        return " | "
    return f"{entry['only_trbert_right']} / {entry['only_other_right']} | {entry['p_mcnemar']:.2g}"


def _table(rows):
    from user_dir.bench.results import markdown_table
    extra = {"dev": "quality_valid", "test": "quality_test"}
    for r in rows:
        for col, key in extra.items():
            r[col] = r[key]
        r["95 % CI"] = f"{r['quality_ci95'][0]:.1f}–{r['quality_ci95'][1]:.1f}"
        r["kept/point"] = " ".join(f"{v:.2f}" for v in r.get("kept", {}).values())
        r["r per point"] = " ".join(f"{v:.3f}" for v in r.get("keep_ratios", []))
        r["padding b32/point"] = " ".join(f"{v:.2f}" for v in r.get("padding_b32", []))
    cols = ("dev", "test", "95 % CI", "kept/point", "r per point", "padding b32/point", "peak_mb")
    table = markdown_table(rows, "accuracy", extra=cols)
    for r in rows:
        for col in cols[:-1]:
            r.pop(col)
    return table


if __name__ == "__main__":
    run()
