"""SRP against the naive structured baseline (magnitude pruning), offline De-En translation.

Steps (each resumable, under checkpoints/bench/srp/; settings from the environment, see below):

1. ``data/de-en-offline``: scripts/data/prepare-de-en-offline.sh (12,253 / 1,000 / 1,000 pairs, joint
   BPE of SRP_BPE pieces);
2. ``srp/base``: the unpruned ``srp_medium`` (d 256, 4 heads, FFN 1024, 3+3 layers, dropout 0.3) by
   scripts/srp/train-base.sh: inverse-sqrt lr (peak SRP_BASE_LR after SRP_WARMUP updates), batches of
   SRP_MAX_TOKENS tokens, dev BLEU (greedy) and dev loss after every epoch (the learning curve), best
   checkpoint by dev BLEU; at most SRP_BASE_EPOCHS epochs and at most SRP_BASE_MINUTES minutes of
   training (fairseq's --stop-time-hours, summed over sittings): the time is the binding budget;
3. for every rate of SRP_RATES (fraction of parameters kept): ``srp/r<rate>/stage1`` and ``/stage2``,
   SRP's two stages by scripts/srp/stage1.sh and stage2.sh: each scores, selects, shrinks the selected
   connectivity to 0 over SRP_PERIOD epochs with KD from its pretrained model, slices, and fine-tunes
   for the rest of SRP_STAGE_EPOCHS (the recipe's 2:1 split of a stage), fixed lr SRP_PRUNE_LR;
4. for every rate: ``srp/r<rate>/magnitude`` (python -m user_dir.srp.magnitude: SRP's groups and
   counts at that rate, lowest L2 norms removed, sliced) and ``/magnitude-ft`` (scripts/srp/finetune.sh
   for 2 x SRP_STAGE_EPOCHS epochs: as many training epochs after the base as SRP's two stages, same
   lr, batches, dropout and label smoothing, no teacher);
5. ``srp/measure``: every model in one process (python -m user_dir.bench.translation): test BLEU as
   fairseq-generate computes it, relative FLOPs, speed-up of beam-search generation at batch 1 and 32
   (protocol: docs/benchmarking.md);
6. ``srp/paper-size``: ``srp_iwslt_de_en`` (d 512, 6+6 layers) with random weights and its two-stage
   SRP selection + slicing at SRP_PAPER_RATE, generation at a forced output length of SRP_FORCED_LEN
   tokens timed by the same protocol; ``srp/overhead``: the trained base against stock fairseq
   ``transformer`` holding the same weights (identical hypotheses expected; the speed ratio is our
   model's decoding overhead);
7. ``srp/significance``: paired bootstrap resampling of test BLEU (SRP_BOOTSTRAP_SAMPLES resamples):
   SRP against the magnitude baseline at every rate, every SRP model against the base.

-> results/srp.{json,md,png}. Targets: a base of >= 10 test BLEU; <= 1.0 BLEU drop at rate 0.5; SRP ahead of the magnitude
baseline at every rate; generation time <= 0.7 x the base's at rate 0.5 (speed-up >= 1/0.7). The
verdicts use the point estimates; the p-values stand beside them.
"""
import json
import os
import re
from pathlib import Path

from common import (PY, TIMING_ROUNDS, TIMING_THREADS, TRAIN_THREADS, log, step_times_markdown, steps,
                    write_results, yes_no)
from user_dir.bench.timing import parse_limits

ARCH = os.environ.get("SRP_ARCH", "srp_medium")
BPE = int(os.environ.get("SRP_BPE", "4000"))
BASE_MINUTES = float(os.environ.get("SRP_BASE_MINUTES", "80"))
BASE_EPOCHS = int(os.environ.get("SRP_BASE_EPOCHS", "100"))
BASE_LR = os.environ.get("SRP_BASE_LR", "1e-3")
WARMUP = os.environ.get("SRP_WARMUP", "1000")
MAX_TOKENS = os.environ.get("SRP_MAX_TOKENS", "2048")
DROPOUT = os.environ.get("SRP_DROPOUT", "0.3")
RATES = os.environ.get("SRP_RATES", "0.7 0.5 0.3").split()
PERIOD = int(os.environ.get("SRP_PERIOD", "2"))
STAGE_EPOCHS = int(os.environ.get("SRP_STAGE_EPOCHS", "3"))
PRUNE_LR = os.environ.get("SRP_PRUNE_LR", "5e-4")
SCORE_BATCHES = os.environ.get("SRP_SCORE_BATCHES", "1")
TIMING_LIMIT = os.environ.get("SRP_TIMING_LIMIT", "1:60,32:256")
PAPER_RATE = float(os.environ.get("SRP_PAPER_RATE", "0.5"))
PAPER_LIMIT = os.environ.get("SRP_PAPER_LIMIT", "1:16,32:64")
FORCED_LEN = int(os.environ.get("SRP_FORCED_LEN", "20"))
OVERHEAD_LIMIT = os.environ.get("SRP_OVERHEAD_LIMIT", "1:50,32:160")
DATA_OVERRIDE = os.environ.get("SRP_DATA", "")  # an already binarised De-En folder (e.g. a dry run)
BATCH_SIZES = [1, 32]
TARGET_DROP, TARGET_RATE, TARGET_TIME = 1.0, 0.5, 0.7
TARGET_BASE_BLEU = 10.0  # a base that translates, so that "pruning keeps BLEU" means something
PAPER_ARCH = os.environ.get("SRP_PAPER_ARCH", "srp_iwslt_de_en")  # another arch only for a dry run
PAPER_SEED, PAPER_SCORE_TOKENS = 1, 1024
SIGNIFICANCE_SAMPLES = int(os.environ.get("SRP_BOOTSTRAP_SAMPLES", "1000"))


def prepare_data(st) -> str:
    if DATA_OVERRIDE:
        return DATA_OVERRIDE
    out = "data-bin/de-en-offline" + ("" if BPE == 4000 else f"-bpe{BPE}")
    cache = ".cache/de-en-offline" + ("" if BPE == 4000 else f"-bpe{BPE}")
    st.run(f"data/{Path(out).name}", ["bash", "scripts/data/prepare-de-en-offline.sh"], settings=f"vocab={BPE}",
           env={"DE_EN_OUT": out, "DE_EN_CACHE": cache, "DE_EN_VOCAB": str(BPE)})
    return out


def _env(data, **extra):
    """What every SRP script of the suite shares: data, arch, batches, dropout, threads."""
    return {"DATA": data, "ARCH": ARCH, "MAX_TOKENS": MAX_TOKENS, "DROPOUT": DROPOUT, "THREADS": TRAIN_THREADS,
            "WEIGHTED_LN": "1", "LOG_INTERVAL": "50", **extra}


def _settings(env: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(env.items()) if k not in ("SAVE_DIR", "THREADS"))


def train_base(st, data) -> Path:
    folder = st.dir("srp/base")
    env = _env(data, SAVE_DIR=str(folder), EPOCHS=str(BASE_EPOCHS), LR=BASE_LR, WARMUP=WARMUP, EVAL_BLEU="1",
               EVAL_BLEU_BEAM="1", MAX_HOURS=f"{BASE_MINUTES / 60:.6g}")
    st.run("srp/base", ["bash", "scripts/srp/train-base.sh"], _settings(env), env)
    return folder


def srp_two_stages(st, data, base: str, rate: str) -> str:
    """SRP's stage 1 (embedding dims) then stage 2 (FFN, q·k, v·o dims); the stage-2 model's path."""
    pretrained = base
    for stage in (1, 2):
        name = f"srp/r{rate}/stage{stage}"
        env = _env(data, SAVE_DIR=str(st.dir(name)), PRETRAINED=pretrained, RATE=rate, PERIOD=str(PERIOD),
                   EPOCHS=str(STAGE_EPOCHS), LR=PRUNE_LR, SCORE_BATCHES=SCORE_BATCHES, EVAL_BLEU="0")
        st.run(name, ["bash", f"scripts/srp/stage{stage}.sh"], _settings(env), env)
        # the whole run (shrinking, slicing, fine-tuning); with EVAL_BLEU=0 "best" would be by dev loss,
        # possibly from before the slicing
        pretrained = str(st.dir(name) / "checkpoint_last.pt")
    return pretrained


def magnitude_baseline(st, data, base: str, rate: str) -> str:
    """Magnitude pruning at SRP's counts, then fine-tuning with the budget of SRP's two stages."""
    name = f"srp/r{rate}/magnitude"
    pruned = st.dir(name) / "checkpoint_pruned.pt"
    cmd = [PY, "-m", "user_dir.srp.magnitude", base, "--compression-rate", rate, "--out", str(pruned),
           "--data", data, "--norm", "l2", "--weighted-layernorm"]
    st.run(name, cmd, " ".join(cmd[3:]), {"OMP_NUM_THREADS": TRAIN_THREADS})
    name = f"srp/r{rate}/magnitude-ft"
    env = _env(data, SAVE_DIR=str(st.dir(name)), PRUNED=str(pruned), EPOCHS=str(2 * STAGE_EPOCHS), LR=PRUNE_LR,
               EVAL_BLEU="0")
    st.run(name, ["bash", "scripts/srp/finetune.sh"], _settings(env), env)
    return str(st.dir(name) / "checkpoint_last.pt")


def measure(st, data, specs, settings, forced_len=None) -> dict:
    """Every model in one process: BLEU, FLOPs and beam-search speed on each model's own output lengths
    (as fairseq-generate), or with ``forced_len`` every hypothesis forced to that many tokens (step
    ``srp/measure-forced``: the same decoding work for every model, no BLEU)."""
    step = "srp/measure" if forced_len is None else "srp/measure-forced"
    folder = st.dir(step)
    cmd = [PY, "-m", "user_dir.bench.translation", data, "--split", "test",
           "--batch-sizes", ",".join(map(str, BATCH_SIZES)), "--timing-limit", TIMING_LIMIT,
           "--threads", str(TIMING_THREADS), "--rounds", str(TIMING_ROUNDS), "--beam", "5",
           "--bleu-batch-size", "128", "--out", str(folder / "measure.json")]
    if forced_len is not None:
        cmd += ["--forced-len", str(forced_len), "--no-bleu"]
    for spec in specs:
        cmd += ["--model", spec]
    st.run(step, cmd, settings + " | " + " ".join(cmd[3:]), env={"OMP_NUM_THREADS": str(TIMING_THREADS)})
    return json.loads((folder / "measure.json").read_text())


# ---- learning curve of the base run --------------------------------------------------------------
_FIELD = re.compile(r"^(\w+) ([-+0-9.eE]+)$")


def learning_curve(train_log: Path) -> list:
    """Per epoch: updates, train loss, dev loss, dev BLEU (greedy), wall minutes, from fairseq's log
    (a later sitting's figures for an epoch replace an interrupted one's). fairseq's wall meter starts
    again at 0 in each sitting; the minutes here add the sittings up (training time to the end of the
    epoch, without the part of an interrupted epoch that was lost)."""
    epochs = {}
    offset = last_wall = 0.0
    if not train_log.is_file():
        return []
    for line in train_log.read_text(errors="replace").splitlines():
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) < 4 or parts[2] not in ("train", "valid") or not parts[3].startswith("epoch "):
            continue
        epoch = int(parts[3].split()[1])
        fields = {}
        for p in parts[4:]:
            m = _FIELD.match(p)
            if m:
                fields[m.group(1)] = float(m.group(2))
        e = epochs.setdefault(epoch, {"epoch": epoch})
        if parts[2] == "train":
            wall = fields.get("wall", 0.0)
            if wall < last_wall:  # a new sitting
                offset += last_wall
            last_wall = wall
            e.update(train_loss=fields.get("loss"), updates=int(fields.get("num_updates", 0)),
                     wall_min=round((offset + wall) / 60, 1))
        else:
            e.update(valid_loss=fields.get("loss"), valid_bleu=fields.get("bleu"))
    return [epochs[k] for k in sorted(epochs)]


# ---- paper-size architecture and decoding overhead ----------------------------------------------
def build_random(task, arch, seed, weighted_layernorm=False):
    """``arch`` over the task's dictionaries (tied output projection), random weights (fixed seed)."""
    import torch
    from argparse import Namespace
    from fairseq.models import ARCH_CONFIG_REGISTRY

    from user_dir.srp.model import SRPModel

    cfg = Namespace(arch=arch, share_decoder_input_output_embed=True, weighted_layernorm=weighted_layernorm,
                    max_source_positions=task.cfg.max_source_positions,
                    max_target_positions=task.cfg.max_target_positions)
    ARCH_CONFIG_REGISTRY[arch](cfg)
    torch.manual_seed(seed)
    return SRPModel.build_model(cfg, task).eval()


def prune_two_stages(model, task, rate, score_batches):
    """SRP's two stages on ``model``, in place, through the pipeline's own code: the controller's
    selection (gradient scores -dL/dc on ``score_batches``, the counts of compression_rate.py) at stage 1
    (embedding dims), slicing, then stage 2 (FFN neurons, q·k and v·o dims) and slicing. No training in
    between (shrinking and fine-tuning change weights, not shapes). Returns the groups removed per kind."""
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


def paper_size(folder: Path, data: str, base_ckpt: str):
    """srp_iwslt_de_en with random weights, two-stage SRP selection + slicing, forced-length generation."""
    from user_dir.bench import timing, translation

    task = translation.load(base_ckpt, data).task  # the data's dictionaries and splits
    task.load_dataset("train")
    score_batches = list(task.get_batch_iterator(
        dataset=task.dataset("train"), max_tokens=PAPER_SCORE_TOKENS, seed=1, max_positions=task.max_positions(),
        ignore_invalid_inputs=True, disable_iterator_cache=True).next_epoch_itr(shuffle=True))[:1]
    base = build_random(task, PAPER_ARCH, PAPER_SEED)
    # the pruning runs load the base weights into a model with the weighted layer norm, as the
    # stage scripts do; the base keeps the plain one it was built with
    pruned = build_random(task, PAPER_ARCH, PAPER_SEED, weighted_layernorm=True)
    pruned.load_state_dict(base.state_dict())
    removed = prune_two_stages(pruned, task, PAPER_RATE, score_batches)
    models = {"base": translation.wrap(base, task, "base"), "pruned": translation.wrap(pruned, task, "pruned")}
    limits = parse_limits(PAPER_LIMIT)
    measured = translation.measure(models, "test", sorted(limits), timing.Protocol(TIMING_THREADS, TIMING_ROUNDS),
                                   limits, forced_len=FORCED_LEN, with_bleu=False, log=log)
    c = base.cfg
    out = {"arch": PAPER_ARCH, "shape": f"d {c.encoder_embed_dim}, {c.encoder_attention_heads} heads, FFN "
                                         f"{c.encoder_ffn_embed_dim}, {c.encoder_layers}+{c.decoder_layers} layers",
           "weights": f"random (seed {PAPER_SEED})", "compression_rate": PAPER_RATE,
           "selection": "two stages (embedding dims; FFN, q·k, v·o dims) by the srp controller, gradient scores "
                        f"on one training batch of <= {PAPER_SCORE_TOKENS} tokens, then slicing",
           "removed_groups": removed, "pruned_shapes": json.loads(pruned.current_shapes().to_json()),
           "forced_len": FORCED_LEN, "timing_limit": limits, "models": measured}
    (folder / "paper.json").write_text(json.dumps(out, indent=1) + "\n")


def overhead(folder: Path, data: str, base_ckpt: str):
    """The trained base (srp) against stock fairseq ``transformer`` holding the same weights."""
    from user_dir.bench import timing, translation
    from user_dir.srp.stock_transformer import stock_transformer_like

    srp = translation.load(base_ckpt, data, "srp")
    stock = translation.wrap(stock_transformer_like(srp.model, srp.task), srp.task, "transformer")
    limits = parse_limits(OVERHEAD_LIMIT)
    measured = translation.measure({"srp": srp, "transformer": stock}, "test", sorted(limits),
                                   timing.Protocol(TIMING_THREADS, TIMING_ROUNDS), limits, with_bleu=False, log=log)
    max_pos = translation.max_positions(srp.task, [srp, stock])
    samples = translation.batches(srp.task, "test", 128, max_positions=max_pos)
    hyps = {name: translation.bleu(m, samples, srp.task) for name, m in (("srp", srp), ("transformer", stock))}
    same = sum(a == b for a, b in zip(hyps["srp"]["hypotheses"], hyps["transformer"]["hypotheses"]))
    out = {"timing_limit": limits, "models": measured, "bleu": {k: v["bleu"] for k, v in hyps.items()},
           "identical_hypotheses": same, "sentences": len(hyps["srp"]["hypotheses"])}
    (folder / "overhead.json").write_text(json.dumps(out, indent=1) + "\n")


def significance(folder: Path, data: str, specs: list, samples: int = SIGNIFICANCE_SAMPLES):
    """Paired bootstrap resampling of test BLEU (user_dir.bench.bleu_significance): SRP against the
    magnitude baseline at each rate, and every SRP model against the base."""
    from user_dir.bench import bleu_significance, translation

    models = translation.load_models(specs, data)
    first = next(iter(models.values()))
    samples_ = translation.batches(first.task, "test", 128,
                                   max_positions=translation.max_positions(first.task, list(models.values())))
    scored = {name: translation.bleu(m, samples_) for name, m in models.items()}
    refs = scored["base"]["references"]

    def hyps(name):
        return name, scored[name]["hypotheses"]
    out = {"samples": samples, "seed": bleu_significance.DEFAULT_SEED, "sentences": len(refs),
           "bleu": {name: b["bleu"] for name, b in scored.items()},
           "vs_magnitude": {}, "vs_base": bleu_significance.paired_bootstrap(
               refs, hyps("base"), [hyps(f"srp-{r}") for r in RATES], samples)}
    for r in RATES:
        out["vs_magnitude"][r] = bleu_significance.paired_bootstrap(refs, hyps(f"magnitude-{r}"), [hyps(f"srp-{r}")],
                                                                    samples)
    (folder / "significance.json").write_text(json.dumps(out, indent=1) + "\n")


# ---- the suite -----------------------------------------------------------------------------------
def run():
    st = steps()
    data = prepare_data(st)
    base_dir = train_base(st, data)
    base = str(base_dir / "checkpoint_best.pt")
    srp_models = {rate: srp_two_stages(st, data, base, rate) for rate in RATES}
    mag_models = {rate: magnitude_baseline(st, data, base, rate) for rate in RATES}
    specs = [f"base={base}"] + [f"srp-{r}={p}" for r, p in srp_models.items()] + \
        [f"magnitude-{r}={p}" for r, p in mag_models.items()]
    measured = measure(st, data, specs, settings="base, SRP and magnitude models")
    forced = measure(st, data, specs, settings="base, SRP and magnitude models", forced_len=FORCED_LEN)
    st.run("srp/paper-size", lambda folder: paper_size(folder, data, base),
           settings=f"arch={PAPER_ARCH} rate={PAPER_RATE} forced_len={FORCED_LEN} limits={PAPER_LIMIT} "
                    f"threads={TIMING_THREADS} rounds={TIMING_ROUNDS}")
    st.run("srp/overhead", lambda folder: overhead(folder, data, base),
           settings=f"base={base} limits={OVERHEAD_LIMIT} threads={TIMING_THREADS} rounds={TIMING_ROUNDS}")
    st.run("srp/significance", lambda folder: significance(folder, data, specs),
           settings=f"paired bootstrap, {SIGNIFICANCE_SAMPLES} resamples | " + " ".join(specs))
    paper = json.loads((st.dir("srp/paper-size") / "paper.json").read_text())
    over = json.loads((st.dir("srp/overhead") / "overhead.json").read_text())
    sig = json.loads((st.dir("srp/significance") / "significance.json").read_text())
    write(st, data, measured, learning_curve(base_dir / "train.log"), paper, over, forced, sig)


def settings_dict(data) -> dict:
    return {"data": data, "arch": ARCH, "bpe_pieces": BPE, "base_minutes": BASE_MINUTES,
            "base_max_epochs": BASE_EPOCHS, "base_lr": BASE_LR, "warmup_updates": WARMUP, "max_tokens": MAX_TOKENS,
            "dropout": DROPOUT, "rates": RATES, "pruning_period": PERIOD, "stage_epochs": STAGE_EPOCHS,
            "prune_lr": PRUNE_LR, "score_batches": SCORE_BATCHES, "magnitude_finetune_epochs": 2 * STAGE_EPOCHS,
            "magnitude_norm": "l2", "timing_limit": TIMING_LIMIT, "paper_rate": PAPER_RATE, "paper_limit": PAPER_LIMIT,
            "forced_len": FORCED_LEN, "train_threads": TRAIN_THREADS, "timing_threads": TIMING_THREADS,
            "timing_rounds": TIMING_ROUNDS, "bootstrap_samples": SIGNIFICANCE_SAMPLES}


def rows_of(measured, forced=None) -> list:
    """Results rows; with ``forced`` (the measurement at forced output lengths) each row also has
    ``forced_speedup_b{B}``: the speed-up when every model decodes the same number of tokens."""
    from user_dir.bench import timing, translation

    m = measured["models"]
    base_params = m["base"]["parameters"]

    def row(key, label, family, series, rate=None):
        r = {"model": label, "family": family, "series": series,
             **translation.row_fields(m, key, "test", BATCH_SIZES)}
        r["relative_parameters"] = round(m[key]["parameters"] / base_params, 4)
        if forced is not None:
            for b in BATCH_SIZES:
                fields = timing.speed_fields(forced["models"][key][f"b{b}"], b)
                r[f"forced_speedup_b{b}"] = fields[f"speedup_b{b}"]
        if rate is not None:
            r["compression_rate"] = float(rate)
        return r

    rows = [row("base", f"base ({ARCH})", "reference", "base")]
    rows += [row(f"srp-{r}", f"SRP, rate {r}", "method", "SRP (two stages)", r) for r in RATES]
    rows += [row(f"magnitude-{r}", f"magnitude, rate {r}", "baseline", "magnitude (L2) + fine-tuning", r)
             for r in RATES]
    return rows


def targets_of(rows, sig=None) -> list:
    """The targets on the point estimates of test BLEU and speed; with ``sig`` (step srp/significance)
    the paired-bootstrap p-value of each BLEU comparison beside it."""
    base = rows[0]
    srp = {r["compression_rate"]: r for r in rows if r["family"] == "method"}
    mag = {r["compression_rate"]: r for r in rows if r["family"] == "baseline"}
    vs_base = {float(k.split("-", 1)[1]): v for k, v in (sig or {}).get("vs_base", {}).items() if k != "base"}
    vs_mag = {float(k): v[f"srp-{k}"] for k, v in (sig or {}).get("vs_magnitude", {}).items()}
    out = [{"target": f"base >= {TARGET_BASE_BLEU:g} test BLEU", "bleu": base["quality"],
            "met": base["quality"] >= TARGET_BASE_BLEU}]
    at = srp.get(TARGET_RATE)
    if at:
        drop = round(base["quality"] - at["quality"], 2)
        out.append({"target": f"<= {TARGET_DROP} BLEU drop at rate {TARGET_RATE}", "drop": drop,
                    **({"p_value_vs_base": vs_base[TARGET_RATE]["p_value"]} if TARGET_RATE in vs_base else {}),
                    "met": drop <= TARGET_DROP})
        for b in BATCH_SIZES:
            ratio = round(1 / at[f"speedup_b{b}"], 3)
            out.append({"target": f"generation time <= {TARGET_TIME} x the base's at rate {TARGET_RATE}, batch {b}",
                        "time_ratio": ratio, "speedup": at[f"speedup_b{b}"], "met": ratio <= TARGET_TIME})
    ahead = [{"rate": rate, "srp": srp[rate]["quality"], "magnitude": mag[rate]["quality"],
              **({"p_value": vs_mag[rate]["p_value"]} if rate in vs_mag else {}),
              "met": srp[rate]["quality"] > mag[rate]["quality"]} for rate in sorted(srp) if rate in mag]
    out.append({"target": "SRP ahead of the magnitude baseline (test BLEU) at every rate", "detail": ahead,
                "met": bool(ahead) and all(a["met"] for a in ahead)})
    return out


def _curve_markdown(curve) -> str:
    if not curve:
        return "(no learning curve: the base run's train.log is missing)\n"
    best = max((e for e in curve if e.get("valid_bleu") is not None), key=lambda e: e["valid_bleu"], default=None)
    step = max(1, len(curve) // 12)
    shown = [e for i, e in enumerate(curve) if i % step == 0 or e is curve[-1] or e is best]
    lines = ["| epoch | updates | train loss | dev loss | dev BLEU (greedy) | minutes |", "|---|---|---|---|---|---|"]
    for e in shown:
        def f(v, fmt):
            return "" if v is None else format(v, fmt)
        mark = " (best)" if e is best else ""
        lines.append(f"| {e['epoch']}{mark} | {e.get('updates', '')} | {f(e.get('train_loss'), '.3f')} | "
                     f"{f(e.get('valid_loss'), '.3f')} | {f(e.get('valid_bleu'), '.2f')} | "
                     f"{f(e.get('wall_min'), '.1f')} |")
    return "\n".join(lines) + "\n"


def _paper_markdown(paper, over) -> str:
    pm = paper["models"]
    sizes = sorted(paper["timing_limit"], key=int)
    lines = [f"Architecture {paper['arch']} ({paper['shape']}), {paper['weights']} weights, "
             f"pruned to rate {paper['compression_rate']} by {paper['selection']}; removed {paper['removed_groups']}. "
             f"Every hypothesis forced to {paper['forced_len']} tokens + eos (random weights would write "
             f"arbitrary lengths); test sentences per timing pass: {paper['timing_limit']}.\n",
             "| model | parameters | relative FLOPs | " + " | ".join(f"speed-up b{b}" for b in sizes) + " |",
             "|---|---|---|" + "---|" * len(sizes)]
    for name in ("base", "pruned"):
        m = pm[name]
        cells = [f"{m[f'b{b}']['speedup']['median']:.2f}x ({m[f'b{b}']['speedup']['min']:.2f}–"
                 f"{m[f'b{b}']['speedup']['max']:.2f})" for b in sizes]
        lines.append(f"| {name} | {m['parameters']:,} | {m['relative_flops']:.3f} | " + " | ".join(cells) + " |")
    om = over["models"]
    def ratio(b):
        return om["srp"][f"b{b}"]["throughput"]["median"] / om["transformer"][f"b{b}"]["throughput"]["median"]
    cells = [f"batch {b}: {ratio(b):.2f}" for b in sorted(over["timing_limit"], key=int)]
    lines += ["", "Decoding overhead of our srp model: throughput of the trained base (srp) / stock fairseq "
              f"`transformer` with the same weights, {', '.join(cells)}; identical hypotheses "
              f"{over['identical_hypotheses']}/{over['sentences']} (BLEU {over['bleu']['srp']:.2f} / "
              f"{over['bleu']['transformer']:.2f}).\n"]
    return "\n".join(lines)


def _significance_markdown(sig) -> str:
    def cell(v):
        return f"{v['bleu']:.2f} ({v['mean'] - v['ci95_half']:.2f}–{v['mean'] + v['ci95_half']:.2f})"
    lines = [f"Paired bootstrap resampling of the {sig['sentences']} test sentences ({sig['samples']} resamples, "
             f"seed {sig['seed']}; sacreBLEU's test, user_dir/bench/bleu_significance.py): BLEU with the 95 % "
             "interval of its resampled mean, and the p-value of \"both equally good\" (two-sided).\n",
             "| comparison | system | baseline | p |", "|---|---|---|---|"]
    for rate, pair in sig["vs_magnitude"].items():
        lines.append(f"| SRP vs magnitude, rate {rate} | {cell(pair[f'srp-{rate}'])} | "
                     f"{cell(pair[f'magnitude-{rate}'])} | {pair[f'srp-{rate}']['p_value']:.3f} |")
    for name, v in sig["vs_base"].items():
        if name != "base":
            lines.append(f"| {name.replace('srp-', 'SRP rate ')} vs base | {cell(v)} | {cell(sig['vs_base']['base'])} | "
                         f"{v['p_value']:.3f} |")
    return "\n".join(lines) + "\n"


def write(st, data, measured, curve, paper, over, forced=None, sig=None):
    from user_dir.bench.results import markdown_table

    rows = rows_of(measured, forced)
    targets = targets_of(rows, sig)
    base = rows[0]
    result = {"method": "srp", "task": f"De-En translation ({data}, test split), {ARCH}",
              "protocol": measured["protocol"], "rows": rows, "targets": targets,
              "base_learning_curve": curve, "paper_size": paper, "overhead": over, "significance": sig,
              "settings": settings_dict(data), "steps": st.summary()}
    md = [f"# SRP vs magnitude pruning, De-En translation ({ARCH})\n",
          f"Reference: the base model, test BLEU {base['quality']:.2f} ({base['parameters']:,} parameters). "
          "Rate = fraction of the parameters kept (SRP's --compression-rate; the magnitude baseline removes the "
          "same number of groups of each type). BLEU = sacreBLEU on the test split as fairseq-generate --beam 5 "
          "--remove-bpe computes it; relative FLOPs = analytic FLOPs of teacher-forced forwards over the test "
          "pairs / the base's; speed-up = throughput of beam-search generation (beam 5, each model's own "
          f"outputs) / the base's, median of {measured['protocol']['rounds']} interleaved rounds (min–max), "
          f"{measured['protocol']['threads']} thread(s), one process (protocol: docs/benchmarking.md). "
          "forced b1 / b32: the same speed-up with every hypothesis forced to "
          f"{FORCED_LEN} tokens (equal decoding work: the model's own cost, without the effect of "
          "writing shorter or longer translations); the targets use the free-decoding figures.\n",
          markdown_table(rows, "BLEU", extra=("relative_parameters", "tokens_per_sentence") + tuple(
              f"forced_speedup_b{b}" for b in BATCH_SIZES if forced is not None) + ("peak_mb",)),
          "\n## Targets\n"]
    for t in targets:
        md.append(f"- {t['target']}: {yes_no(t['met'])} " +
                  json.dumps({k: v for k, v in t.items() if k not in ("target", "met")}))
    if sig:
        md += ["\n## Significance of the BLEU differences\n", _significance_markdown(sig)]
    md += ["\n## Base model: learning curve\n", _curve_markdown(curve),
           "\n## Paper-size architecture (random weights) and decoding overhead\n", _paper_markdown(paper, over),
           "\n## Steps (wall time on this machine)\n", step_times_markdown(st.summary()),
           "\nSettings: `" + json.dumps(result["settings"]) + "`\n"]
    write_results("srp", result, "\n".join(md), f"SRP vs magnitude pruning, De-En translation, {ARCH}", "BLEU")


if __name__ == "__main__":
    run()
