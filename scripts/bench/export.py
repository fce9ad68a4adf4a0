"""The bench's pruned sentiment models out of fairseq: ONNX export, parity with fairseq over the whole
test split, and speed in onnxruntime against the unpruned export, beside the PyTorch figures.

Models (shared steps of the other suites, trained there or here when missing): the fine-tuned
MiniLM (reference), Kprune 50 %, LTP λ EXPORT_LTP_LAMBDA (reg-norm tokens, hard stage) and the
composition Kprune 50 % → LTP (the compose suite's model); for translation, the SRP suite's base and
its SRP model at rate EXPORT_SRP_RATE (an encoder and an incremental decoder graph each, fairseq's
beam search over them).

Steps: one ``fairseq-compress-export --check-parity`` per model (every test sentence through
onnxruntime and fairseq; tolerance 1e-4 on the logits); the onnxruntime timing of every export in one
process (``user_dir.export.ort_speed``: the bench's protocol, same threads as PyTorch); the PyTorch
measurement of the same checkpoints in one process (``user_dir.bench.compare``); for translation
both timings again with every hypothesis forced to the SRP suite's SRP_FORCED_LEN tokens (equal
decoding work; reported beside, the targets use free decoding). Target: onnxruntime speed-up >= 0.9x
the FLOPs reduction at batch 1 and 32.
"""
import json
import os

import compose as compose_suite
import kprune as kprune_suite
import ltp as ltp_suite
from common import (BENCH_ROOT, PY, TIMING_ROUNDS, TIMING_THREADS, encoder_baseline, measure, prepare_encoder_data,
                    step_times_markdown, steps, write_results, yes_no)
from user_dir.bench import compare, timing

EXPORT_LTP_LAMBDA = os.environ.get("EXPORT_LTP_LAMBDA", "0.05")
EXPORT_SRP_RATE = os.environ.get("EXPORT_SRP_RATE", "0.5")
# beam search per sentence is slow on 2 cores: the timing passes see a spread sample of the test set
TRANSLATION_TIMING_LIMIT = "1:100,32:320"
SIZES = [1, 32]
TIMING_LIMIT = "1:300"
TARGET_FRACTION = 0.9


def models(st):
    """(key, label, family, checkpoint) of every exported model; trains what the other suites did not."""
    data = prepare_encoder_data(st, "sentiment")
    baseline = encoder_baseline(st, data, ltp_suite.BASE_EPOCHS)
    kp50 = str(kprune_suite.prune(st, data, baseline, "kprune", "0.5") / "checkpoint_pruned.pt")
    ltp = ltp_suite.learn(st, data, baseline, f"ltp/tokens-{EXPORT_LTP_LAMBDA}", "tokens", EXPORT_LTP_LAMBDA)
    composed = ltp_suite.learn(st, data, kp50, f"compose/kprune50-ltp-{compose_suite.COMPOSE_NORM}-"
                               f"{compose_suite.COMPOSE_LAMBDA}", compose_suite.COMPOSE_NORM,
                               compose_suite.COMPOSE_LAMBDA)
    return data, [("base", "fine-tuned MiniLM", "reference", baseline),
                  ("kprune50", "Kprune 50 %", "method", kp50),
                  (f"ltp-{EXPORT_LTP_LAMBDA}", f"LTP λ {EXPORT_LTP_LAMBDA} (tokens)", "method", ltp),
                  ("composed", f"Kprune 50 % → LTP λ {compose_suite.COMPOSE_LAMBDA}", "method", composed)]


def translation_models(st):
    """The SRP suite's base and its SRP model at EXPORT_SRP_RATE (trained there, or here when missing)."""
    import srp as srp_suite

    data = srp_suite.prepare_data(st)
    base = str(srp_suite.train_base(st, data) / "checkpoint_best.pt")
    pruned = srp_suite.srp_two_stages(st, data, base, EXPORT_SRP_RATE)
    return data, [("srp-base", f"{srp_suite.ARCH} base", "reference", base),
                  (f"srp-{EXPORT_SRP_RATE}", f"SRP rate {EXPORT_SRP_RATE}", "method", pruned)]


def export_and_time(st, prefix, data, chosen, timing_limit):
    """Every model exported with its parity check, then all exports timed in one process; returns
    (ort_speed's measurement, {key: parity report})."""
    folders = {}
    for key, _, _, ckpt in chosen:
        cmd = ["fairseq-compress-export", "--user-dir", "user_dir", "--path", ckpt,
               "--out", str(BENCH_ROOT / f"export/{key}/onnx"), "--check-parity", data, "--subset", "test",
               "--threads", str(TIMING_THREADS)]
        folders[key] = st.run(f"export/{key}", cmd, settings=" ".join(cmd[1:]),
                              env={"OMP_NUM_THREADS": str(TIMING_THREADS)}) / "onnx"
    ort = _timing_step(st, f"export/{prefix}ort-speed", "user_dir.export.ort_speed", data, timing_limit,
                       "--export", folders.items(), "speed.json")
    return ort, {key: json.loads((folders[key] / "parity.json").read_text()) for key in folders}


def _timing_step(st, step, module, data, timing_limit, flag, named_paths, out_name, extra=()):
    """One timing process (``module``: user_dir.export.ort_speed with ``--export`` folders or
    user_dir.bench.translation with ``--model`` checkpoints) on the test split at the bench's batch
    sizes, threads and rounds, as step ``step``; returns its JSON output."""
    folder = st.dir(step)
    cmd = [PY, "-m", module, data, "--split", "test", "--batch-sizes", ",".join(map(str, SIZES)),
           "--timing-limit", timing_limit, "--threads", str(TIMING_THREADS), "--rounds", str(TIMING_ROUNDS),
           *extra, "--out", str(folder / out_name)]
    for name, path in named_paths:
        cmd += [flag, f"{name}={path}"]
    st.run(step, cmd, settings=" ".join(cmd[3:]), env={"OMP_NUM_THREADS": str(TIMING_THREADS)})
    return json.loads((folder / out_name).read_text())


def translation_measure(st, data, chosen) -> dict:
    """The PyTorch side of the translation exports: BLEU, FLOPs and beam-search speed in one process."""
    return _timing_step(st, "export/translation-pytorch", "user_dir.bench.translation", data, TRANSLATION_TIMING_LIMIT,
                        "--model", [(key, ckpt) for key, _, _, ckpt in chosen], "measure.json")


def translation_forced(st, data, chosen):
    """Both runtimes again with every hypothesis forced to FORCED_LEN tokens (SRP's ``srp/measure-forced``):
    the same decoding work for every model, so the speed-up is the model's own cost, not the effect
    of writing shorter or longer translations. Returns (onnxruntime's, PyTorch's measurement)."""
    import srp as srp_suite

    forced = ["--forced-len", str(srp_suite.FORCED_LEN)]
    ort = _timing_step(st, "export/translation-ort-speed-forced", "user_dir.export.ort_speed", data,
                       TRANSLATION_TIMING_LIMIT, "--export",
                       [(key, BENCH_ROOT / f"export/{key}/onnx") for key, _, _, _ in chosen], "speed.json",
                       extra=forced + ["--no-flops"])
    torch_measured = _timing_step(st, "export/translation-pytorch-forced", "user_dir.bench.translation", data,
                                  TRANSLATION_TIMING_LIMIT, "--model", [(key, ckpt) for key, _, _, ckpt in chosen],
                                  "measure.json", extra=forced + ["--no-bleu"])
    return ort, torch_measured


def run():
    st = steps()
    data, chosen = models(st)
    ort, parity = export_and_time(st, "", data, chosen, TIMING_LIMIT)
    torch_measured = measure(st, "export/pytorch", data, [f"{key}={ckpt}" for key, _, _, ckpt in chosen],
                             settings="the exported checkpoints", splits="test",
                             batch_sizes=",".join(map(str, SIZES)), timing_limit=TIMING_LIMIT)
    write(chosen, ort, torch_measured, parity, st)  # the sentiment figures now: SRP's models may take hours
    tr_data, tr_chosen = translation_models(st)
    tr_ort, tr_parity = export_and_time(st, "translation-", tr_data, tr_chosen, TRANSLATION_TIMING_LIMIT)
    tr_measured = translation_measure(st, tr_data, tr_chosen)
    tr_forced = translation_forced(st, tr_data, tr_chosen)
    write(chosen, ort, torch_measured, parity, st,
          translation=translation_rows(tr_chosen, tr_ort, tr_measured, tr_parity, tr_forced))


def rows_of(chosen, ort, torch_measured, parity):
    rows = []
    for key, label, family, _ in chosen:
        torch_row = compare.row_fields(torch_measured["models"], key, "test", SIZES)
        timed = ort["exports"][key]
        row = {"model": label, "family": family, "series": "reference" if family == "reference" else "ONNX export",
               "quality": torch_row["quality"], "quality_split": "test",
               "relative_flops": torch_row["relative_flops"], "parameters": torch_row["parameters"],
               "parity_max_abs_diff": parity[key]["max_abs_diff"], "parity_examples": parity[key]["examples"],
               "parity_argmax_agreement": parity[key]["argmax_agreement"], "parity_passed": parity[key]["passed"],
               "method_chain": timed["method_chain"], "ort_relative_flops": timed.get("relative_flops")}
        for b in SIZES:
            row[f"pytorch_throughput_b{b}"] = torch_row[f"throughput_b{b}"]
        rows.append(speed_and_targets(row, timed, torch_row))
    return rows


def speed_and_targets(row, timed, torch_row):
    """``row`` with onnxruntime's speed fields, PyTorch's speed-up beside them and the target per batch
    size (0.9x the FLOPs reduction; the bench's FLOPs count, which the export's own must equal)."""
    for b in SIZES:
        row.update(timing.speed_fields(timed[f"b{b}"], b))
        row[f"pytorch_speedup_b{b}"] = torch_row[f"speedup_b{b}"]
        row[f"target_b{b}"] = round(TARGET_FRACTION / row["relative_flops"], 3)
        row[f"met_b{b}"] = bool(row[f"speedup_b{b}"] >= row[f"target_b{b}"])
    return row


def translation_rows(chosen, ort, measured, parity, forced=None):
    """Rows of the translation exports: BLEU of fairseq and of onnxruntime (beam 5, whole test set),
    identical hypotheses, onnxruntime's beam-search speed-up beside PyTorch's; with ``forced``
    (:func:`translation_forced`) also both speed-ups at a forced output length (``forced_speedup_b*``,
    ``pytorch_forced_speedup_b*``)."""
    from user_dir.bench import translation

    rows = []
    for key, label, family, _ in chosen:
        torch_row = translation.row_fields(measured["models"], key, "test", SIZES)
        timed, p = ort["exports"][key], parity[key]
        row = {"model": label, "family": family, "series": "reference" if family == "reference" else "ONNX export",
               "quality": torch_row["quality"], "quality_split": "test", "relative_flops": torch_row["relative_flops"],
               "parameters": torch_row["parameters"], "bleu_onnxruntime": round(p["bleu_onnxruntime"], 2),
               "identical_hypotheses": p["identical_hypotheses"], "parity_max_abs_diff": p["max_abs_diff"],
               "parity_examples": p["examples"], "parity_passed": p["passed"], "method_chain": timed["method_chain"]}
        if forced is not None:
            ort_forced, torch_forced = forced
            for b in SIZES:
                row[f"forced_speedup_b{b}"] = timing.speed_fields(ort_forced["exports"][key][f"b{b}"], b)[f"speedup_b{b}"]
                row[f"pytorch_forced_speedup_b{b}"] = timing.speed_fields(
                    torch_forced["models"][key][f"b{b}"], b)[f"speedup_b{b}"]
            row["forced_len"] = ort_forced["forced_len"]
        rows.append(speed_and_targets(row, timed, torch_row))
    return rows


def _translation_markdown(rows):
    md = ["\n## Translation (SRP, offline De-En)\n",
          "Encoder and incremental decoder graphs; fairseq's beam search (beam 5) runs over them. BLEU on the "
          "whole test set from fairseq and from onnxruntime; parity = the decoder's step logits, teacher-forced "
          "with the caches, over every real target position. Speed-up = beam-search throughput against the "
          "unpruned export (each model decodes to its own lengths; the targets use these)."
          + (f" Forced: the same with every hypothesis forced to {rows[0]['forced_len']} tokens, so that both "
             "models do the same decoding work." if rows and "forced_len" in rows[0] else "") + "\n"]
    forced = [f"{rt} forced b{b}" for rt in ("ORT", "PyTorch")
              for b in SIZES] if rows and "forced_len" in rows[0] else []
    heads = ["model", "BLEU fairseq", "BLEU onnxruntime", "identical hypotheses", "rel. FLOPs", "ORT b1", "ORT b32",
             "PyTorch b1", "PyTorch b32", *forced, "parity max abs diff"]
    md += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in rows:
        cells = [r["model"], f"{r['quality']:.2f}", f"{r['bleu_onnxruntime']:.2f}",
                 f"{100 * r['identical_hypotheses']:.1f} %", f"{r['relative_flops']:.3f}"]
        cells += [f"{r[f'{key}_b{b}']:.2f}x" for key in ("speedup", "pytorch_speedup") for b in SIZES]
        if forced:
            cells += [f"{r[f'{key}_b{b}']:.2f}x" for key in ("forced_speedup", "pytorch_forced_speedup") for b in SIZES]
        cells.append(f"{r['parity_max_abs_diff']:.2e} ({r['parity_examples']} sentences)")
        md.append("| " + " | ".join(cells) + " |")
    return md


def write(chosen, ort, torch_measured, parity, st, translation=()):
    rows = rows_of(chosen, ort, torch_measured, parity)
    pruned = [r for r in rows if r["family"] != "reference"] + [r for r in translation if r["family"] != "reference"]
    all_parity = all(r["parity_passed"] for r in [*rows, *translation])
    result = {"method": "export", "task": "sentiment (Rotten-Tomatoes sentences), MiniLM-L6, onnxruntime CPU",
              "protocol": ort["protocol"], "runtime": ort["runtime"], "rows": rows,
              "translation_rows": list(translation),
              "targets": {"parity_1e-4_whole_test_split": {"met": all_parity},
                          **{f"ort_speedup_ge_0.9x_flops_reduction_b{b}": {
                              "met": all(r[f"met_b{b}"] for r in pruned),
                              "rows": {r["model"]: r[f"met_b{b}"] for r in pruned}} for b in SIZES}},
              "steps": st.summary()}
    md = ["# Pruned models in onnxruntime (sentiment, MiniLM-L6" + ("; translation, SRP" if translation else "")
          + ")\n",
          "Every model exported by `fairseq-compress-export` (torch's TorchScript-based exporter) and run "
          "in onnxruntime's CPU provider. Speed-up = onnxruntime throughput against the unpruned export, "
          f"median of {ort['protocol']['rounds']} interleaved rounds (min–max), {ort['protocol']['threads']} "
          "thread(s), all exports in one process; the PyTorch speed-ups of the same checkpoints (measured in "
          "another process by the same protocol) beside them. Accuracy is fairseq's; the parity columns say "
          "how far onnxruntime's logits are from it over the whole test split.\n",
          "| model | accuracy (test) | rel. FLOPs | target (0.9 / rel. FLOPs) | ORT b1 | ORT b32 | PyTorch b1 | "
          "PyTorch b32 | parity max abs diff | same class |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        target = "" if r["family"] == "reference" else f"{r['target_b1']:.2f}x"
        speeds = [f"{r[f'speedup_b{b}']:.2f}x ({r[f'speedup_b{b}_min']:.2f}–{r[f'speedup_b{b}_max']:.2f})"
                  + ("" if r["family"] == "reference" else " ✓" if r[f"met_b{b}"] else " ✗") for b in SIZES]
        md.append(f"| {r['model']} | {r['quality']:.2f} | {r['relative_flops']:.3f} | {target} | "
                  + " | ".join(speeds) + " | "
                  + " | ".join(f"{r[f'pytorch_speedup_b{b}']:.2f}x" for b in SIZES)
                  + f" | {r['parity_max_abs_diff']:.2e} ({r['parity_examples']} sentences) | "
                  f"{100 * r['parity_argmax_agreement']:.1f} % |")
    if translation:
        md += _translation_markdown(translation)
    md += ["\n## Targets\n",
           f"- onnxruntime equals fairseq within 1e-4 on every test sentence"
           + (" (translation: and the same beam-search hypotheses)" if translation else "") + f": {yes_no(all_parity)}"]
    for b in SIZES:
        misses = [r["model"] for r in pruned if not r[f"met_b{b}"]]
        md.append(f"- onnxruntime speed-up ≥ 0.9× the FLOPs reduction at batch {b}: "
                  f"{yes_no(not misses)}" + (f" (not met by {', '.join(misses)})" if misses else ""))
    md += ["\n## Steps (wall time on this machine)\n", step_times_markdown(st.summary())]
    write_results("export", result, "\n".join(md), "Pruned MiniLM exports in onnxruntime vs the unpruned export",
                  "accuracy %")


if __name__ == "__main__":
    run()
