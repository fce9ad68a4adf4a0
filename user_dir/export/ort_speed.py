"""Speed of exported models in onnxruntime, by the project's timing protocol.

    python -m user_dir.export.ort_speed DATA --export base=EXPORT_DIR --export pruned=EXPORT_DIR \\
        [--split test] [--batch-sizes 1,32] [--timing-limit 1:300] [--threads 1] [--rounds 5] --out r.json

The first export is the reference (the unpruned model). Every export runs in an onnxruntime session
with ``--threads`` intra-op threads (one inter-op thread, sequential execution), the same count the
PyTorch figures use, on the same batches (``user_dir.bench.sentence.batches`` /
``user_dir.bench.translation.batches`` of the split), timed by ``user_dir.bench.timing.time_models``:
warm-up, interleaved rounds, median speed-up with its spread. Sentence models time ``model.onnx`` on
token batches; translation models time fairseq's beam search over the two graphs
(:mod:`user_dir.export.ort_translation`), as the bench times PyTorch generation.

With the source checkpoints of the model cards at hand, the relative FLOPs of each export on the
timed split come from the bench's counting (``bench.sentence.score`` / ``bench.translation.flops``),
and each batch size reports the target: speed-up >= 0.9 x the FLOPs reduction (1 / relative FLOPs).
"""
import argparse
import json
import logging
import os
from typing import Dict, List, Optional, Sequence

import user_dir  # noqa: F401  (registers the plugin's models)
from user_dir.bench import json_out, timing
from user_dir.export import ort_runtime
from user_dir.export.loading import ExportError, load

logger = logging.getLogger("user_dir.export.ort_speed")
TARGET_FRACTION = 0.9


def read_card(folder: str) -> dict:
    path = os.path.join(folder, "model_card.json")
    if not os.path.isfile(path):
        raise ExportError(f"--export {folder}: not an export folder (model_card.json missing)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def sentence_runner(folder: str, threads: int):
    sess = ort_runtime.session(os.path.join(folder, "model.onnx"), threads)
    return lambda tokens: sess.run(["logits"], {"src_tokens": tokens.numpy()})


def measure(exports: Dict[str, str], data: str, split: str = "test", batch_sizes: Sequence[int] = (1, 32),
            protocol: timing.Protocol = timing.Protocol(), timing_limit: Optional[Dict[int, int]] = None,
            with_flops: bool = True, beam: int = 5, forced_len: Optional[int] = None, log=logger.info) -> dict:
    """Per export: throughput and speed-up (vs the first) at each batch size, relative FLOPs and the
    target check. ``exports`` maps a name to an export folder; all must be of one task. ``forced_len``
    (translation only): every hypothesis is that many tokens + eos, so each export does the same
    decoding work (``user_dir.bench.translation.generator``)."""
    cards = {name: read_card(folder) for name, folder in exports.items()}
    kinds = {card["task"] for card in cards.values()}
    if len(kinds) != 1:
        raise ExportError(f"--export: the exports mix tasks ({', '.join(sorted(kinds))}); time one task at a time")
    if forced_len is not None and kinds != {"translation"}:
        raise ExportError("--forced-len applies to translation exports only (sentence models have no output length)")
    names = list(exports)
    reference = load(cards[names[0]]["source_checkpoint"], data)  # the split's batches, as the bench makes them
    sources = {names[0]: reference} if with_flops else {}
    if with_flops:
        sources.update({n: load(cards[n]["source_checkpoint"], data) for n in names[1:]})
    out = {name: {"folder": os.path.abspath(folder), "method_chain": cards[name]["method_chain_text"]}
           for name, folder in exports.items()}
    if with_flops:
        for name, rel in _relative_flops(sources, reference, split).items():
            out[name]["relative_flops"] = rel
    timing_limit = timing_limit or {}
    for bsz in batch_sizes:
        batches, runners = _timed(reference, exports, split, bsz, timing_limit.get(bsz, 0), protocol.threads, beam,
                                  forced_len)
        timed = timing.time_models(runners, batches, protocol)
        for name in names:
            out[name][f"b{bsz}"] = timed[name]
            rel = out[name].get("relative_flops")
            if rel:
                target = TARGET_FRACTION / rel
                out[name][f"target_b{bsz}"] = {"speedup_at_least": target,
                                               "met": timed[name]["speedup"]["median"] >= target}
            log(f"{name} batch {bsz}: {timed[name]['throughput']['median']:.1f} ex/s, speed-up "
                f"{timed[name]['speedup']['median']:.2f} ({timed[name]['speedup']['min']:.2f}-"
                f"{timed[name]['speedup']['max']:.2f})")
    return {"protocol": protocol.as_dict(), "runtime": _runtime(), "split": split, "forced_len": forced_len,
            "exports": out}


def _timed(reference, exports, split, bsz, limit, threads, beam, forced_len=None):
    if reference.kind == "sentence":
        from user_dir.bench.sentence import batches

        samples = batches(reference.task, split, bsz, limit=limit, max_positions=reference.reference.max_positions())
        return ([s["net_input"]["src_tokens"] for s in samples],
                {name: sentence_runner(folder, threads) for name, folder in exports.items()})
    from user_dir.bench import translation as bench
    from user_dir.export import ort_translation

    task = reference.task
    samples = bench.batches(task, split, bsz, limit=limit,
                            max_positions=bench.max_positions(task, [bench.wrap(reference.reference, task, "ref")]))
    runners = {}
    for name, folder in exports.items():
        model = ort_translation.load(os.path.join(folder, "encoder.onnx"), os.path.join(folder, "decoder.onnx"),
                                     task.source_dictionary, task.target_dictionary,
                                     reference.reference.encoder.max_positions(),
                                     reference.reference.decoder.max_positions(), threads)
        gen = bench.generator(task, model, beam, forced_len)
        runners[name] = lambda sample, m=model, g=gen: bench.translate(task, g, m, sample)
    return samples, runners


def _relative_flops(sources, reference, split) -> Dict[str, float]:
    """Summed MACs over the split of each source checkpoint / the first's (the bench's counting)."""
    if reference.kind == "sentence":
        from user_dir.bench.sentence import SCORE_BATCH_SIZE, SentenceModel, batches, score

        samples = batches(reference.task, split, SCORE_BATCH_SIZE,
                          max_positions=reference.reference.max_positions())
        macs = {n: score(SentenceModel(n, s.path, s.reference, reference.task, s.head, s.regression), samples)["macs"]
                for n, s in sources.items()}
    else:
        from user_dir.bench import translation as bench

        src, tgt = bench.split_lengths(reference.task, split)
        macs = {n: bench.flops(s.reference, src, tgt) for n, s in sources.items()}
    first = next(iter(macs.values()))
    return {n: m / first for n, m in macs.items()}


def _runtime() -> dict:
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__, "providers": ["CPUExecutionProvider"]}


def main(argv: Optional[List[str]] = None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="the data folder of the models (fairseq-preprocess layout)")
    p.add_argument("--export", action="append", required=True, metavar="NAME=DIR",
                   help="an export folder of fairseq-compress-export, named; the first is the reference")
    p.add_argument("--split", default="test", help="split whose batches are timed (default: %(default)s)")
    p.add_argument("--batch-sizes", default="1,32", help="batch sizes to time (default: %(default)s)")
    p.add_argument("--timing-limit", default="1:300",
                   help="BSZ:N,... at most N examples per timing pass at that batch size (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default: %(default)s)")
    p.add_argument("--forced-len", type=int, default=None, metavar="N",
                   help="translation: force every hypothesis to N tokens + eos, so that every export does the "
                        "same decoding work (default: each decodes to its own lengths)")
    p.add_argument("--no-flops", action="store_true", help="skip the relative FLOPs (needs the source checkpoints)")
    p.add_argument("--out", help="write the measurement as JSON here")
    args = p.parse_args(argv)
    if args.forced_len is not None and args.forced_len < 1:
        p.error(f"--forced-len must be at least 1, got {args.forced_len}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(message)s")
    exports = {}
    for spec in args.export:
        name, sep, folder = spec.partition("=")
        name, folder = (name, folder) if sep else (spec, spec)
        exports[name] = folder
    try:
        result = measure(exports, args.data, args.split, [int(b) for b in args.batch_sizes.split(",") if b],
                         timing.Protocol(args.threads, args.rounds), timing.parse_limits(args.timing_limit),
                         with_flops=not args.no_flops, forced_len=args.forced_len)
    except ExportError as e:  # bad input: one line, no traceback
        p.error(str(e))
    json_out.emit(result, args.out)


if __name__ == "__main__":
    main()
