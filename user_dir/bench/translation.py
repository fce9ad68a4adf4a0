"""Translation checkpoints of any kind (``srp``, stock ``transformer``) measured one way, in one process.

    python -m user_dir.bench.translation DATA --model base=BASE.pt --model pruned=PRUNED.pt \\
        [--split test] [--batch-sizes 1,32] [--timing-limit 1:100,32:320] [--threads 1] [--rounds 5] \\
        [--beam 5] [--bleu-batch-size 128] --out result.json

The first model is the reference. For every model:

* **BLEU** on the split, computed as ``fairseq-generate --beam 5 --batch-size 128 --remove-bpe
  --scoring sacrebleu`` computes it (scripts/srp/test.sh): the same length-sorted batches, beam search
  with fairseq's generation defaults, BPE removed (``"@@ "``) from hypotheses and references, the
  reference's unknown words escaped, fairseq's sacrebleu scorer (13a tokenisation); a test checks that
  the figure equals stock fairseq-generate's;
* **analytic FLOPs** of a teacher-forced forward of every sentence pair at its source and reference
  lengths (eos included), counted from the real module shapes by SRP's counting code
  (``user_dir.srp.counting``: every projection, both attention products, the output projection; it
  reads the same module names in stock fairseq transformers), summed over the split; relative FLOPs
  = that sum / the reference's;
* parameters, generated tokens per sentence (of the BLEU pass);
* **speed of generation** by the timing protocol (``user_dir.bench.timing``): each runner translates
  one batch by beam search in-process (``task.inference_step``, what fairseq-generate runs), every
  model on the same batches of the split (fairseq's length-sorted batches of each size; at most
  ``timing_limit`` sentences per pass, evenly spread over the lengths), throughput in sentences / s
  and speed-up against the reference;
* peak memory of translating the longest batch of the largest size (``user_dir.bench.memory``).

Each model decodes to its own output lengths, as fairseq-generate would. ``forced_len`` (for models
with random weights, or trained too briefly to stop where a translation would) instead fixes every
hypothesis of the timing passes to that many tokens plus eos, the same decoding work for every model;
the BLEU pass always decodes freely.
"""
import argparse
import logging
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

import user_dir  # noqa: F401  (registers the plugin's models; allowlists fairseq checkpoints)
from user_dir.bench import json_out, memory, timing

logger = logging.getLogger("user_dir.bench.translation")

POST_PROCESS = "subword_nmt"  # what fairseq-generate --remove-bpe sets: drop "@@ "


@dataclass
class TranslationModel:
    name: str
    path: str
    model: torch.nn.Module
    task: object
    overrides: Dict = field(default_factory=dict)

    def parameters(self) -> int:
        from user_dir.common.counting import count_parameters
        return count_parameters(self.model)


def load(path: str, data: str, name: Optional[str] = None, overrides: Optional[Dict] = None,
         device: str = "cpu") -> TranslationModel:
    """A translation checkpoint (any task and model fairseq-generate loads) in eval mode, its task
    pointed at ``data``."""
    from fairseq import checkpoint_utils

    overrides = dict(overrides or {})
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides={"data": data, **overrides})
    model = models[0].to(device).eval()
    return TranslationModel(name or path, path, model, task, overrides)


def wrap(model: torch.nn.Module, task, name: str, path: str = "") -> TranslationModel:
    """A model built in this process (e.g. random weights) as a :class:`TranslationModel`."""
    return TranslationModel(name, path, model.eval(), task)


def generator(task, model, beam: int = 5, forced_len: Optional[int] = None):
    """fairseq's beam search with fairseq-generate's defaults (max length 200, no length penalty);
    with ``forced_len`` N every hypothesis is N tokens + eos, whatever the weights."""
    from fairseq.dataclass.configs import GenerationConfig

    cfg = GenerationConfig(beam=beam)
    if forced_len is not None:
        cfg.max_len_a, cfg.max_len_b, cfg.min_len = 0, forced_len, forced_len
    return task.build_generator([model], cfg)


def translate(task, gen, model, sample):
    """Hypotheses of one batch (the call the timing measures)."""
    return task.inference_step(gen, [model], sample)


def _symbols_to_strip(gen):
    return getattr(gen, "symbols_to_strip_from_output", None) or {gen.eos}


@torch.inference_mode()
def bleu(tm: TranslationModel, samples: List[dict], task=None, beam: int = 5,
         forced_len: Optional[int] = None) -> dict:
    """sacreBLEU of ``tm`` on ``samples``, exactly as fairseq-generate --remove-bpe --scoring sacrebleu;
    also the hypotheses and references (de-BPE'd, in sample-id order) and the generated tokens (eos
    included)."""
    from fairseq import utils
    from fairseq.scoring.bleu import SacrebleuConfig, SacrebleuScorer

    task = task or tm.task
    tgt_dict = task.target_dictionary
    gen = generator(task, tm.model, beam, forced_len)
    strip = _symbols_to_strip(gen)
    scorer = SacrebleuScorer(SacrebleuConfig())
    hyps, refs, tokens = {}, {}, 0
    for sample in samples:
        out = translate(task, gen, tm.model, sample)
        for i, sid in enumerate(sample["id"].tolist()):
            target = utils.strip_pad(sample["target"][i, :], tgt_dict.pad()).int().cpu()
            ref = tgt_dict.string(target, POST_PROCESS, escape_unk=True, extra_symbols_to_ignore=strip)
            hypo = out[i][0]["tokens"].int().cpu()
            # utils.post_process_prediction's string, without its encode_line (which would add the
            # de-BPE'd words to the shared dictionary)
            hyp = tgt_dict.string(hypo, POST_PROCESS, extra_symbols_to_ignore=strip)
            scorer.add_string(ref, hyp)
            hyps[sid], refs[sid] = hyp, ref
            tokens += int(hypo.numel())
    n = len(hyps)
    return {"bleu": scorer.score(), "bleu_string": scorer.result_string(), "sentences": n,
            "generated_tokens": tokens, "tokens_per_sentence": tokens / max(n, 1),
            "hypotheses": [hyps[k] for k in sorted(hyps)], "references": [refs[k] for k in sorted(refs)]}


def batches(task, split: str, batch_size: int, limit: int = 0, max_positions=None) -> List[dict]:
    """fairseq-generate's batches of ``split`` (length-sorted, ``--batch-size``, no token limit); with
    ``limit``, evenly spaced batches holding about ``limit`` sentences, so every length range is
    represented. The iterator cache is bypassed: fairseq would otherwise hand back the batches of the
    first batch size asked for on this dataset, whatever the size asked for later."""
    if split not in task.datasets:
        task.load_dataset(split)
    itr = task.get_batch_iterator(dataset=task.dataset(split), max_tokens=None, max_sentences=batch_size,
                                  max_positions=max_positions, ignore_invalid_inputs=False,
                                  required_batch_size_multiple=1, seed=1, num_workers=0,
                                  disable_iterator_cache=True)
    out = list(itr.next_epoch_itr(shuffle=False))
    sentences = sum(s["nsentences"] for s in out)
    if limit and sentences > limit:
        keep = max(1, round(len(out) * limit / sentences))
        out = [out[round(i * (len(out) - 1) / max(1, keep - 1))] for i in range(keep)]
    return out


def split_lengths(task, split: str):
    if split not in task.datasets:
        task.load_dataset(split)
    ds = task.dataset(split)
    return np.asarray(ds.src_sizes, dtype=np.int64), np.asarray(ds.tgt_sizes, dtype=np.int64)


def flops(model, src_sizes, tgt_sizes) -> float:
    """Summed analytic FLOPs of teacher-forced forwards of all the pairs (SRP's counting)."""
    from user_dir.srp.counting import flops_per_sentence

    pairs, counts = np.unique(np.stack([src_sizes, tgt_sizes], 1), axis=0, return_counts=True)
    return float(sum(int(n) * flops_per_sentence(model, s, t)["total"] for (s, t), n in zip(pairs, counts)))


def max_positions(task, models: Sequence[TranslationModel]):
    from fairseq import utils
    return utils.resolve_max_positions(task.max_positions(), *[m.model.max_positions() for m in models])


def _check_dictionaries(models: Dict[str, TranslationModel]):
    ref = next(iter(models.values()))
    for name, m in models.items():
        for side in ("source_dictionary", "target_dictionary"):
            a, b = getattr(ref.task, side), getattr(m.task, side)
            if len(a) != len(b) or a.symbols[:len(a)] != b.symbols[:len(b)]:
                raise ValueError(f"model {name!r}: its {side} differs from {ref.name!r}'s; all models of a "
                                 "comparison must share the data's dictionaries")


def measure(models: Dict[str, TranslationModel], split: str, batch_sizes: Sequence[int], protocol: timing.Protocol,
            timing_limit: Dict[int, int] = None, beam: int = 5, bleu_batch_size: int = 128,
            forced_len: Optional[int] = None, with_bleu: bool = True, log=logger.info) -> dict:
    """Every figure of the module docstring, for every model; the first model is the reference. All
    models are decoded with the reference's task (same batches, same dictionaries)."""
    torch.set_num_threads(protocol.threads)
    _check_dictionaries(models)
    names = list(models)
    ref = models[names[0]]
    task = ref.task
    max_pos = max_positions(task, list(models.values()))
    src, tgt = split_lengths(task, split)
    out = {}
    for name, m in models.items():
        total = flops(m.model, src, tgt)
        out[name] = {"path": m.path, "overrides": m.overrides, "parameters": m.parameters(),
                     "flops": total, "flops_per_sentence": total / len(src)}
    for name in names:
        out[name]["relative_flops"] = out[name]["flops"] / out[names[0]]["flops"]
    if with_bleu:
        samples = batches(task, split, bleu_batch_size, max_positions=max_pos)
        for name, m in models.items():
            b = bleu(m, samples, task, beam)  # each model's own lengths: forced ones would make BLEU meaningless
            out[name][split] = {k: v for k, v in b.items() if k not in ("hypotheses", "references")}
            log(f"{name} {split}: {b['bleu_string']}; relative FLOPs {out[name]['relative_flops']:.4f}, "
                f"{b['tokens_per_sentence']:.2f} generated tokens per sentence")
    timing_limit = timing_limit or {}
    gens = {name: generator(task, m.model, beam, forced_len) for name, m in models.items()}
    for bsz in batch_sizes:
        samples = batches(task, split, bsz, limit=timing_limit.get(bsz, 0), max_positions=max_pos)
        runners = {name: (lambda sample, m=m, g=gens[name]: translate(task, g, m.model, sample))
                   for name, m in models.items()}
        timed = timing.time_models(runners, samples, protocol)
        for name in names:
            out[name][f"b{bsz}"] = timed[name]
            log(f"{name} batch {bsz}: {timed[name]['throughput']['median']:.2f} sentences/s, speed-up "
                f"{timed[name]['speedup']['median']:.2f} ({timed[name]['speedup']['min']:.2f}-"
                f"{timed[name]['speedup']['max']:.2f})")
    if batch_sizes:
        big = batches(task, split, max(batch_sizes), max_positions=max_pos)[-1]
        for name, m in models.items():
            out[name]["peak_mb"] = memory.forward_peak_mb(m.model, lambda m=m: translate(task, gens[name], m.model, big))
            out[name]["peak_mb_batch"] = list(big["net_input"]["src_tokens"].shape)
    return out


def row_fields(measured: dict, name: str, split: str, batch_sizes: Sequence[int]) -> dict:
    """The ``results`` row fields of one measured model (BLEU, relative FLOPs, speed-ups...)."""
    m = measured[name]
    row = {"quality": round(m[split]["bleu"], 2), "quality_split": split,
           "relative_flops": round(m["relative_flops"], 4), "parameters": m["parameters"],
           "flops_per_sentence": round(m["flops_per_sentence"]),
           "tokens_per_sentence": round(m[split]["tokens_per_sentence"], 2)}
    for bsz in batch_sizes:
        row.update(timing.speed_fields(m[f"b{bsz}"], bsz, throughput_digits=3))
    if m.get("peak_mb") is not None:
        row["peak_mb"] = m["peak_mb"]
    return row


def load_models(specs: Sequence[str], data: str) -> Dict[str, TranslationModel]:
    from user_dir.bench.sentence import parse_spec

    models = {}
    for spec in specs:
        name, path, overrides = parse_spec(spec)
        if name in models:
            raise ValueError(f"--model: the name {name!r} is used twice")
        models[name] = load(path, data, name, overrides)
    return models


def main(argv: Optional[List[str]] = None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="binarised translation data folder (fairseq-preprocess layout)")
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH[:KEY=VALUE,...]",
                   help="a checkpoint, optionally named and with config overrides; the first is the reference")
    p.add_argument("--split", default="test", help="split to translate, score and time (default: %(default)s)")
    p.add_argument("--batch-sizes", default="1,32", help="batch sizes to time (default: %(default)s)")
    p.add_argument("--timing-limit", default="1:100,32:320",
                   help="BSZ:N,... at most N sentences per timing pass at that batch size (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default: %(default)s)")
    p.add_argument("--beam", type=int, default=5, help="beam size (default: %(default)s, as fairseq-generate)")
    p.add_argument("--bleu-batch-size", type=int, default=128,
                   help="batch size of the BLEU pass (default: %(default)s, as scripts/srp/test.sh)")
    p.add_argument("--forced-len", type=int, default=None, metavar="N",
                   help="decode every hypothesis to exactly N tokens plus eos: the same decoding work for "
                        "every model, for models too little trained to stop where a translation would "
                        "(default: each model's own lengths, as fairseq-generate)")
    p.add_argument("--no-bleu", action="store_true", help="skip the BLEU pass (speed, FLOPs and memory only)")
    p.add_argument("--out", help="write the measurement as JSON here")
    args = p.parse_args(argv)
    if args.forced_len is not None and args.forced_len < 1:
        p.error(f"--forced-len must be at least 1, got {args.forced_len}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(message)s")
    models = load_models(args.model, args.data)
    sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    protocol = timing.Protocol(args.threads, args.rounds)
    result = measure(models, args.split, sizes, protocol, timing.parse_limits(args.timing_limit), args.beam,
                     args.bleu_batch_size, forced_len=args.forced_len, with_bleu=not args.no_bleu)
    json_out.emit({"protocol": protocol.as_dict(), "split": args.split, "beam": args.beam,
                   "forced_len": args.forced_len, "batch_sizes": sizes,
                   "timing_limit": timing.parse_limits(args.timing_limit), "models": result}, args.out)


if __name__ == "__main__":
    main()
