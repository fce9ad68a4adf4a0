"""``fairseq-kprune`` / ``python -m user_dir.kprune``: the command line of Kprune (and, with
``--method kwon``, of the Kwon et al. baseline on the same sample, constraint and checkpoint format)."""
import argparse
import contextlib
import json
import logging
import os
import resource
import sys

import numpy as np
import torch

from user_dir.kprune.checkpoint import (
    KpruneInputError, classification_head_name, is_regression, load_finetuned, save_pruned,
)
from user_dir.kprune.data import KpruneDataError, average_length, example_lengths, sample_batches
from user_dir.kprune.flops import flops_model_for, fvcore_layer_flops, model_sizes
from user_dir.kprune.kwon import KwonSettings, fold_and_slice, prune_kwon
from user_dir.kprune.kwon import masked_logits as kwon_masked_logits
from user_dir.kprune.prune import KpruneSettings, apply_pruning, kprune, masked_logits

logger = logging.getLogger("fairseq_cli.kprune")

CHECKPOINT_NAME = "checkpoint_pruned.pt"
LOG_NAME = "kprune_log.json"


def _open_interval(value: str) -> float:
    x = float(value)
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1) (the fraction of FLOPs removed), got {value}")
    return x


def _positive(kind):
    def parse(value: str):
        x = kind(value)
        if not x > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
        return x
    return parse


def _non_negative(value: str) -> float:
    x = float(value)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return x


DESCRIPTION = f"""Kprune: retraining-free structured pruning of a fine-tuned encoder.

    fairseq-kprune DATA --user-dir user_dir --path FINETUNED.pt --constraint 0.5 \\
        [--sublayerwise-tuning] --save-dir OUT [--cpu]

removes attention heads and FFN neurons of a fine-tuned prunable_roberta sentence classifier
until at least --constraint of its FLOPs are gone, and writes OUT/{CHECKPOINT_NAME} and
OUT/{LOG_NAME}. With --method kwon the same is done by the baseline Kprune builds on (Kwon et
al., NeurIPS 2022: Fisher mask search, mask rearrangement, mask tuning), on the same sample.
Score the result with the stock tool:

    fairseq-validate DATA --user-dir user_dir --task sentence_prediction \\
        --criterion sentence_prediction --path OUT/{CHECKPOINT_NAME} --batch-size 32
"""


# options of one method only: dest -> (option, default). They are parsed with argparse.SUPPRESS,
# so an option that was given can be told from one that was not; the defaults are filled in by
# resolve_method_options, and giving the other method's options is an error.
KPRUNE_ONLY = {
    "lam_pred": ("--lam-pred", 1.0),
    "lam_rep": ("--lam-rep", 2.5e-4),
    "mu": ("--mu", None),
    "T": ("--T", 2.0),
    "sublayerwise_tuning": ("--sublayerwise-tuning", False),
    "ridge": ("--ridge", 0.0),
}
KWON_ONLY = {
    "kwon_no_rearrange": ("--kwon-no-rearrange", False),
    "kwon_no_rescale": ("--kwon-no-rescale", False),
    "kwon_damp": ("--kwon-damp", 1.0),
    "kwon_full_teacher": ("--kwon-full-teacher", False),
    "kwon_per_batch_fisher": ("--kwon-per-batch-fisher", False),
}
METHOD_OPTIONS = {"kprune": KPRUNE_ONLY, "kwon": KWON_ONLY}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fairseq-kprune", description=DESCRIPTION, allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="sentence_prediction data directory (input0/, label/, as written by "
                                "fairseq-preprocess); the knowledge is measured on its training split")
    g = p.add_argument_group("fairseq")
    g.add_argument("--path", required=True, metavar="FILE",
                   help="fine-tuned prunable_roberta checkpoint (--task sentence_prediction)")
    g.add_argument("--user-dir", default=None, metavar="DIR",
                   help="path to the plugin package to import (this plugin's user_dir is always loaded)")
    g.add_argument("--cpu", action="store_true", help="run on the CPU even if CUDA is available")
    g.add_argument("--batch-size", type=_positive(int), default=32, metavar="N",
                   help="examples per batch for knowledge measurement and tuning (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seed of the example sample (default: %(default)s)")
    g.add_argument("--save-dir", default="checkpoints", metavar="DIR",
                   help=f"where {CHECKPOINT_NAME} and {LOG_NAME} are written (default: %(default)s)")
    g.add_argument("--train-subset", default="train", metavar="SPLIT",
                   help="split the examples are drawn from (default: %(default)s)")
    g.add_argument("--valid-subset", default="valid", metavar="SPLIT",
                   help="split whose average length sets n in the FLOPs model; the training split is "
                        "used if it does not exist (default: %(default)s)")
    g.add_argument("--no-progress-bar", action="store_true",
                   help="no progress bar over the sublayers (there is none anyway when stderr is not a "
                        "terminal, e.g. in a log file)")

    m = p.add_argument_group("pruning (both methods)")
    m.add_argument("--method", choices=sorted(METHOD_OPTIONS), default="kprune",
                   help="kprune: Kprune (Park et al., ICLR 2024); kwon: the retraining-free baseline it "
                        "builds on (Kwon et al., NeurIPS 2022: Fisher mask search, mask rearrangement, "
                        "mask tuning), same sample, constraint and output (default: %(default)s)")
    m.add_argument("--constraint", type=_open_interval, required=True, metavar="C",
                   help="fraction of the model's FLOPs to remove, in (0, 1) (e.g. 0.5)")
    m.add_argument("--num-tokens", type=_positive(int), default=100000, metavar="N",
                   help="tokens of training data to prune with: min(N / average length, |train|) "
                        "examples are drawn (default: %(default)s)")
    m.add_argument("--num-samples", type=_positive(int), default=None, metavar="N",
                   help="draw N examples instead of --num-tokens' worth (Kwon et al.'s original used "
                        "2048; default: use --num-tokens)")

    k = p.add_argument_group("Kprune only (an error with --method kwon)")
    S = argparse.SUPPRESS
    k.add_argument("--lam-pred", type=_non_negative, default=S, metavar="W",
                   help="weight of predictive knowledge in the importance score (default: 1.0)")
    k.add_argument("--lam-rep", type=_non_negative, default=S, metavar="W",
                   help="weight of representational knowledge in the importance score (default: 2.5e-4)")
    k.add_argument("--mu", type=_positive(float), default=S, metavar="M",
                   help="factor on head scores, which are means over a head's dimensions "
                        "(default: the model's head size)")
    k.add_argument("--T", type=_positive(float), default=S, metavar="T",
                   help="softmax temperature of the predictive (KL) loss (default: 2.0)")
    k.add_argument("--sublayerwise-tuning", action="store_true", default=S,
                   help="KPWT: after each sublayer is decided, refit its output projection to the "
                        "teacher by least squares")
    k.add_argument("--ridge", type=_non_negative, default=S, metavar="R",
                   help="KPWT ridge, relative to the mean diagonal of XᵀX (default: 0, plain least squares)")

    w = p.add_argument_group("Kwon et al. only (an error with --method kprune; defaults: the original's, "
                             "except the per-example Fisher)")
    w.add_argument("--kwon-no-rearrange", action="store_true", default=S,
                   help="skip mask rearrangement (the greedy swaps with the within-layer Fisher)")
    w.add_argument("--kwon-no-rescale", action="store_true", default=S,
                   help="skip mask tuning (the layer-wise least squares on the kept mask values)")
    w.add_argument("--kwon-damp", type=_non_negative, default=S, metavar="D",
                   help="damping of the LSMR solve in mask tuning (default: 1.0)")
    w.add_argument("--kwon-full-teacher", action="store_true", default=S,
                   help="tune the masks towards the unpruned model instead of the original's teacher "
                        "(the search's result at the milder constraint 1 - sqrt(1 - C))")
    w.add_argument("--kwon-per-batch-fisher", action="store_true", default=S,
                   help="one mask gradient per mini-batch (of its mean loss), as the original code, "
                        "instead of one per example as the paper's Fisher")
    return p


def resolve_method_options(args) -> None:
    """Fill in the defaults of ``args.method``'s own options; refuse the other method's options."""
    method = getattr(args, "method", "kprune")
    args.method = method
    for other, options in METHOD_OPTIONS.items():
        if other == method:
            continue
        given = [option for dest, (option, _) in options.items() if hasattr(args, dest)]
        if given:
            raise KpruneInputError(f"{given[0]}: only for --method {other}, not --method {method}")
    for dest, (_, default) in METHOD_OPTIONS[method].items():
        if not hasattr(args, dest):
            setattr(args, dest, default)


@contextlib.contextmanager
def progress_bar(args):
    """Whether to draw tqdm bars; while they are drawn, log lines go through tqdm so the two do
    not interleave. A bar only makes sense on a terminal: in a log file it is carriage-return noise."""
    show = not args.no_progress_bar and sys.stderr.isatty()
    if not show:
        yield False
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        yield True


def _setup_logging():
    # fairseq's own: one stdout handler with fairseq's format, level from $LOGLEVEL (default INFO);
    # importing fairseq already installed a root handler, so logging.basicConfig would be a no-op
    from fairseq.utils import reset_logging

    reset_logging()


def _load_split(task, split: str, data: str, option: str):
    """A split of ``data`` as the checkpoint's task loads it; empty or missing splits are errors."""
    prefix = os.path.join(data, "input0", split)
    if not os.path.isfile(prefix + ".idx"):
        raise KpruneInputError(f"data: no {split!r} split in {data} ({prefix}.idx missing; {option})")
    if os.path.isfile(prefix + ".bin") and os.path.getsize(prefix + ".bin") == 0:
        # what fairseq-preprocess writes for an empty text file; fairseq cannot even open it
        raise KpruneInputError(f"data: the {split!r} split in {data} is empty ({option})")
    try:
        task.load_dataset(split, combine=False, epoch=1)
    except Exception as e:
        raise KpruneInputError(f"data: cannot load the {split!r} split of {data} ({option}; "
                               f"{type(e).__name__}: {str(e)[:200]})") from None
    dataset = task.dataset(split)
    if len(dataset) == 0:
        raise KpruneInputError(f"data: the {split!r} split in {data} is empty ({option})")
    return dataset


# from here on so little of the encoder is left that users should look before they ship it
HIGH_CONSTRAINT = 0.85


def main(args) -> dict:
    from fairseq import utils

    resolve_method_options(args)
    if args.user_dir:
        utils.import_user_module(args)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")

    model, cfg, task, state = load_finetuned(args.path, args.data)
    model = model.to(device).eval()
    head_name = classification_head_name(cfg)
    regression = is_regression(cfg)
    train = _load_split(task, args.train_subset, args.data, "--train-subset")
    try:
        valid = _load_split(task, args.valid_subset, args.data, "--valid-subset")
        length_split = args.valid_subset
    except KpruneInputError:
        valid, length_split = train, args.train_subset
    n = average_length(valid)
    flops = flops_model_for(model, n)
    try:
        batches = sample_batches(train, args.num_tokens, args.batch_size, args.seed,
                                 task.source_dictionary.pad(), model.max_positions(), device,
                                 num_examples=getattr(args, "num_samples", None))
    except KpruneDataError as e:
        raise KpruneInputError(f"data: {args.train_subset!r} split in {args.data}: {e}") from None
    if args.method == "kwon" and any(b.target is None for b in batches):
        raise KpruneInputError(f"data: the {args.train_subset!r} split in {args.data} has no labels "
                               "(label/ missing); --method kwon needs them for its task-loss Fisher")
    num_examples = sum(b.tokens.size(0) for b in batches)
    num_tokens = sum(b.num_tokens for b in batches)
    logger.info(f"model: {args.path} ({len(model.layers)} layers, heads {model_sizes(model)[0]}, "
                f"FFN {model_sizes(model)[1]}); {'regression' if regression else 'classification'} "
                f"head {head_name!r}; device {device}")
    logger.info(f"data: {num_examples} examples / {num_tokens} tokens from {args.train_subset!r} "
                f"(average train length {float(example_lengths(train).mean()):.2f}); FLOPs model "
                f"n = {n:.2f} (average length of {length_split!r})")

    n_int = max(1, int(round(n)))
    fv_before = fvcore_layer_flops(model, n_int)
    an_before = flops_model_for(model, n_int).total(*model_sizes(model))

    if args.method == "kwon":
        settings = KwonSettings(constraint=args.constraint, rearrange=not args.kwon_no_rearrange,
                                rescale=not args.kwon_no_rescale, damp=args.kwon_damp,
                                full_teacher=args.kwon_full_teacher,
                                per_batch_fisher=args.kwon_per_batch_fisher, regression=regression,
                                head_name=head_name)
        with progress_bar(args) as progress:
            result = prune_kwon(model, batches, flops, settings, progress=progress)
        reference = kwon_masked_logits(model, result.masks, batches[0], head_name)
        fold_and_slice(model, result.masks)  # the tuned mask values go into the weights
    else:
        settings = KpruneSettings(constraint=args.constraint, lam_pred=args.lam_pred, lam_rep=args.lam_rep,
                                  mu=args.mu, T=args.T, sublayerwise_tuning=args.sublayerwise_tuning,
                                  ridge=args.ridge, regression=regression, head_name=head_name)
        with progress_bar(args) as progress:
            result = kprune(model, batches, flops, settings, progress=progress)
        reference = masked_logits(model, result.masks, batches[0], head_name)
        apply_pruning(model, result.masks)
    with torch.no_grad():
        sliced = model(batches[0].tokens, features_only=True, classification_head_name=head_name)[0]
    masked_vs_sliced = float((reference - sliced).abs().max())

    fv_after = fvcore_layer_flops(model, n_int)
    an_after = flops_model_for(model, n_int).total(*model_sizes(model))
    info = {
        "method": args.method,
        "path": os.path.abspath(args.path),
        "settings": {k: v for k, v in vars(args).items()},
        "avg_length": n, "examples": num_examples, "tokens": num_tokens,
        **result.summary(),
        "encoder_layer_heads": model.args.encoder_layer_heads,
        "encoder_layer_ffn_dims": model.args.encoder_layer_ffn_dims,
        "masked_vs_sliced_max_abs_diff": masked_vs_sliced,
        "fvcore_check": {"n": n_int, "analytic_before": an_before, "fvcore_before": fv_before,
                         "analytic_after": an_after, "fvcore_after": fv_after},
        # whole process (fairseq, data, model, teacher copy, caches); Linux reports KiB
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if device.type == "cuda" else None,
    }
    if args.method == "kprune":
        info["mu"] = settings.mu if settings.mu is not None else model.layers[0].self_attn.head_dim
    os.makedirs(args.save_dir, exist_ok=True)
    out = os.path.join(args.save_dir, CHECKPOINT_NAME)
    # both outputs are written to temporary names and renamed (atomic on one file system): a run
    # killed while writing leaves the previous run's outputs whole, never a truncated file
    log_path = os.path.join(args.save_dir, LOG_NAME)
    with open(log_path + ".tmp", "w") as f:
        json.dump(info, f, indent=1)
    save_pruned(out, model, cfg, state, info)  # fairseq's torch_persistent_save: .tmp, then rename
    os.replace(log_path + ".tmp", log_path)

    removed = 1.0 - result.flops_after / result.flops_before
    logger.info(f"FLOPs per sequence (n = {n:.2f}): {result.flops_before / 1e6:.2f} M before, "
                f"{result.flops_after / 1e6:.2f} M after: {100 * removed:.2f} % removed "
                f"(constraint {100 * args.constraint:.1f} %, budget {result.budget / 1e6:.2f} M)")
    logger.info(f"fvcore cross-check at n = {n_int} (2 FLOPs per multiply-add): before "
                f"{fv_before / 1e6:.3f} M vs analytic {an_before / 1e6:.3f} M, after "
                f"{fv_after / 1e6:.3f} M vs analytic {an_after / 1e6:.3f} M")
    logger.info(f"heads per layer {result.heads_before} -> {result.heads_after}")
    logger.info(f"FFN neurons per layer {result.ffn_before} -> {result.ffn_after}")
    logger.info(f"masked vs sliced logits: max |diff| = {masked_vs_sliced:.2e}")
    if args.constraint >= HIGH_CONSTRAINT:
        heads_left, ffn_left = sum(result.heads_after), sum(result.ffn_after)
        logger.warning(
            f"--constraint {args.constraint}: only {heads_left} of {sum(result.heads_before)} attention heads "
            f"and {ffn_left} of {sum(result.ffn_before)} FFN neurons are left (heads per layer "
            f"{result.heads_after}, neurons {result.ffn_after}); without retraining, accuracy at this "
            "rate is usually far below the unpruned model's: check it with fairseq-validate")
    if args.method == "kwon":
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in result.stage_seconds.items())
        logger.info(f"pruning time (Kwon et al.: fisher + search + rearrange + rescale): "
                    f"{result.loop_seconds:.1f} s ({stages})")
    else:
        logger.info(f"pruning time (the {2 * len(model.layers)}-sublayer loop): {result.loop_seconds:.1f} s "
                    f"(+ {result.teacher_seconds:.1f} s recording teacher outputs)")
    logger.info(f"peak memory: {info['peak_rss_mb']:.0f} MB resident"
                + (f", {info['peak_cuda_mb']:.0f} MB CUDA" if info["peak_cuda_mb"] is not None else ""))
    logger.info(f"saved {out} (--encoder-layer-heads {model.args.encoder_layer_heads} "
                f"--encoder-layer-ffn-dims {model.args.encoder_layer_ffn_dims})")
    return info


def cli_main(argv=None):
    _setup_logging()
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        main(args)
    except KpruneInputError as e:
        sys.exit(f"fairseq-kprune: error: {e}")


if __name__ == "__main__":
    cli_main()
