"""``fairseq-compress-report``: compare a baseline with its compressed versions in one table.

    fairseq-compress-report data-bin/sentiment --path base.pt --path kprune.pt --path ltp.pt

Any mix of sentence-prediction checkpoints (stock fairseq ``roberta_*``, this project's prunable,
Kprune, LTP, TR-BERT and composed models); the first ``--path`` is the reference. Everything is
measured by the bench's protocol (docs/benchmarking.md) in this one process: quality on the chosen
subsets, relative FLOPs, parameters, throughput and speed-up at each batch size, peak memory.
Prints a table and writes it as JSON (``--json``) and a plot (``--plot``).

On translation data (``dict.<lang>.txt`` files, no ``input0/``: what ``fairseq-preprocess`` writes
for ``--task translation``) the checkpoints are translation models (SRP, its base, stock
transformers), measured by ``user_dir.bench.translation``: BLEU as ``fairseq-generate --beam 5
--remove-bpe --scoring sacrebleu`` computes it, FLOPs of a teacher-forced forward, and the speed of
beam search, all on the timing subset (the last of ``--subsets`` by default).

    fairseq-compress-report data-bin/de-en --path base.pt --path srp.pt --subsets test
"""
import argparse
import glob
import json
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

logger = logging.getLogger("fairseq_compress.report")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fairseq-compress-report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="the data folder the checkpoints were trained on (fairseq-preprocess layout)")
    p.add_argument("--path", action="append", required=True, metavar="[NAME=]CKPT[:KEY=VALUE,...]",
                   help="a checkpoint, optionally named and with model overrides (e.g. "
                        "'masked=ltp.pt:ltp_physical_removal=False'); repeat; the first is the reference")
    p.add_argument("--user-dir", default=None, help="accepted for symmetry with the fairseq tools "
                   "(the plugin is always loaded)")
    p.add_argument("--subsets", default="valid,test", help="subsets to score (default: %(default)s)")
    p.add_argument("--timing-subset", default=None, help="subset whose batches are timed (default: the last of --subsets)")
    p.add_argument("--batch-sizes", default="1,32", help="batch sizes to time (default: %(default)s)")
    p.add_argument("--max-examples", type=int, default=300,
                   help="at most this many examples per timing pass below batch 32 (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for timing (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default: %(default)s)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where the models run; cuda: timed by CUDA events, GPU peak memory (default: %(default)s)")
    p.add_argument("--beam", type=int, default=5, help="translation data: beam size (default: %(default)s)")
    p.add_argument("--forced-len", type=int, default=None, metavar="N",
                   help="translation data: time hypotheses of exactly N tokens, the same decoding work for "
                        "every model (default: each model's own lengths)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the table and measurements here")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="plot quality and speed-up against FLOPs")
    return p


def is_translation_data(data: str) -> bool:
    """fairseq-preprocess's translation layout: dict.<lang>.txt files and no input0/ folder."""
    return not os.path.isdir(os.path.join(data, "input0")) and bool(glob.glob(os.path.join(data, "dict.*.txt")))


def _split_present(data: str, split: str, translation: bool) -> bool:
    if translation:
        return bool(glob.glob(os.path.join(data, f"{glob.escape(split)}.*-*.*.idx")))
    return os.path.isfile(os.path.join(data, "input0", f"{split}.idx"))


def _check(args, parser):
    if not os.path.isdir(args.data):
        parser.error(f"DATA: no such directory: {args.data}")
    translation = is_translation_data(args.data)
    for spec in args.path:
        from user_dir.bench.sentence import parse_spec
        _, path, _ = parse_spec(spec)
        if not os.path.isfile(path):
            parser.error(f"--path: no such checkpoint file: {path}")
    if args.threads < 1 or args.rounds < 1:
        parser.error("--threads and --rounds must be at least 1")
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is available to torch")
    if args.max_examples < 1:
        parser.error(f"--max-examples must be at least 1, got {args.max_examples}")
    splits = [s for s in args.subsets.split(",") if s] + ([args.timing_subset] if args.timing_subset else [])
    if not splits:
        parser.error("--subsets: at least one split, e.g. valid,test")
    for split in splits:  # found now, not after every checkpoint is loaded
        if not _split_present(args.data, split, translation):
            option = "--timing-subset" if split == args.timing_subset else "--subsets"
            missing = f"{split}.SRC-TGT.SRC.idx" if translation else f"input0/{split}.idx"
            parser.error(f"{option}: no split {split!r} in {args.data} ({missing} is missing)")
    if translation and args.device != "cpu":
        parser.error("--device cuda: translation models are measured on the CPU only; "
                     "time them on a GPU with scripts/gpu/speed.py")
    if args.beam < 1:
        parser.error(f"--beam must be at least 1, got {args.beam}")
    if args.forced_len is not None and args.forced_len < 1:
        parser.error(f"--forced-len must be at least 1, got {args.forced_len}")
    try:
        sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    except ValueError:
        parser.error(f"--batch-sizes: comma-separated positive integers, got {args.batch_sizes!r}")
    if any(b < 1 for b in sizes):
        parser.error(f"--batch-sizes: comma-separated positive integers, got {args.batch_sizes!r}")
    return sizes


def table_rows(measured: dict, subsets: List[str], sizes: List[int], quality_split: str,
               row_fields=None) -> List[dict]:
    from user_dir.bench import compare
    row_fields = row_fields or compare.row_fields
    rows = []
    for i, name in enumerate(measured):
        row = {"model": name, "family": "reference" if i == 0 else "method", "series": name}
        row.update(row_fields(measured, name, quality_split, sizes))
        if "speedup_b1" not in row:
            row["speedup_b1"] = float("nan")
        if "speedup_b32" not in row:
            row["speedup_b32"] = float("nan")
        rows.append(row)
    return rows


def render(rows: List[dict], subsets: List[str], sizes: List[int], quality_split: str,
           quality_name: str = "quality") -> str:
    head = ["model"] + [f"{quality_name} {s}" for s in subsets] + ["rel. FLOPs", "params"] + \
        [f"ex/s b{b}" for b in sizes] + [f"speed-up b{b}" for b in sizes] + ["peak MB"]
    lines = [head]
    for r in rows:
        q = {s: r["quality"] if s == quality_split else r.get(f"quality_{s}") for s in subsets}
        lines.append([r["model"]] + [f"{q[s]:.2f}" if q[s] is not None else "" for s in subsets] +
                     [f"{r['relative_flops']:.3f}", f"{r['parameters'] / 1e6:.2f}M"] +
                     [f"{r.get(f'throughput_b{b}', float('nan')):.1f}" for b in sizes] +
                     [f"{r.get(f'speedup_b{b}', float('nan')):.2f}x" for b in sizes] +
                     [f"{r['peak_mb']:.0f}" if r.get("peak_mb") is not None else ""])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [" | ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    sizes = _check(args, parser)
    subsets = [s for s in args.subsets.split(",") if s]
    timing_subset = args.timing_subset or subsets[-1]
    from fairseq.utils import reset_logging
    reset_logging()
    import user_dir  # noqa: F401
    from user_dir.bench import compare, results, timing

    limits = {b: args.max_examples for b in sizes if b < 32}
    protocol = timing.Protocol(args.threads, args.rounds)
    if is_translation_data(args.data):
        from user_dir.bench import translation

        models = translation.load_models(args.path, args.data)
        measured = translation.measure(models, timing_subset, sizes, protocol, limits, beam=args.beam,
                                       forced_len=args.forced_len)
        quality_split = timing_subset
        subsets = [quality_split]
        rows = table_rows(measured, subsets, sizes, quality_split, translation.row_fields)
        quality_name = "BLEU"
        note = (f"BLEU as fairseq-generate --beam {args.beam} --remove-bpe --scoring sacrebleu; FLOPs: a "
                "teacher-forced forward at the reference lengths, relative to the first model; speed: beam "
                "search" + (f" with hypotheses of {args.forced_len} tokens" if args.forced_len else ""))
    else:
        models = compare.load_models(args.path, args.data, args.device)
        measured = compare.measure(models, subsets, sizes, protocol, timing_subset, limits)
        quality_split = timing_subset if timing_subset in subsets else subsets[-1]
        rows = table_rows(measured, subsets, sizes, quality_split)
        quality_name = "quality"
        note = "quality: accuracy % or Pearson r x 100; FLOPs: encoder MACs relative to the first model on the same examples"
    print(render(rows, subsets, sizes, quality_split, quality_name))
    print(f"({protocol.describe()}; {note})")
    if args.json:
        Path(args.json).write_text(json.dumps({"protocol": protocol.as_dict(), "device": args.device, "rows": rows,
                                               "measured": measured}, indent=1) + "\n")
        print(f"written {args.json}")
    if args.plot:
        results.plot(rows, Path(args.plot), f"{args.data}: compressed models against {rows[0]['model']}",
                     quality_name)
        print(f"written {args.plot}")
    return 0


def cli_main():
    sys.exit(main())


if __name__ == "__main__":
    cli_main()
