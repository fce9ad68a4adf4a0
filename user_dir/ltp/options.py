"""LTP's model options: command-line definitions, architecture defaults and validation.

The names and defaults follow the original LTP configuration (``prune_mode``, ``masking_mode``,
``final_token_threshold``, ``token_keep_rate``, ``temperature``); ``--lambda-threshold`` and
``--ltp-reg-norm`` belong to the criterion (``user_dir/ltp/criterion.py``). Values are checked
twice: by argparse when they come from the command line (so a typo stops fairseq-train before
anything is loaded), and again when the encoder is built, because checkpoints and
``--model-overrides`` bypass argparse.
"""
import argparse
import math
from dataclasses import dataclass
from typing import Optional

from fairseq import utils
from fairseq.utils import safe_getattr

PRUNE_MODES = ("absolute_threshold", "topk")
MASKING_MODES = ("soft", "hard")
SCORE_NORMS = ("fixed", "length")

DEFAULTS = dict(
    prune_mode="absolute_threshold",
    masking_mode="hard",
    final_token_threshold=0.01,
    token_keep_rate=0.5,
    temperature=1e-3,
    threshold_lr=None,  # None: the model's --lr
    ltp_score_norm="fixed",
    ltp_score_length=128,
    ltp_physical_removal=True,
)


class LtpOptionError(ValueError):
    """An LTP option has a value the method cannot use."""


# ---- range checks shared by argparse and the encoder ------------------------------------------
def _finite(name, value):
    value = float(value)
    if not math.isfinite(value):
        raise LtpOptionError(f"--{name} must be a finite number, got {value}")
    return value


def check_threshold(value):
    value = _finite("final-token-threshold", value)
    if not 0.0 <= value <= 1.0:
        raise LtpOptionError(
            f"--final-token-threshold must be in [0, 1] (an attention-score threshold), got {value}")
    return value


def check_keep_rate(value):
    value = _finite("token-keep-rate", value)
    if value > 1.0:
        raise LtpOptionError(
            f"--token-keep-rate must be <= 1 (the keep rate of the last layer; negative values are "
            f"allowed and clamp to 0.01), got {value}")
    return value


def check_temperature(value):
    value = _finite("temperature", value)
    if value <= 0.0:
        raise LtpOptionError(f"--temperature must be > 0 (soft-mask sigmoid temperature), got {value}")
    return value


def check_threshold_lr(value):
    if value is None:
        return None
    value = _finite("threshold-lr", value)
    if value <= 0.0:
        raise LtpOptionError(f"--threshold-lr must be > 0, got {value}")
    return value


def check_score_length(value):
    if int(value) != float(value) or int(value) < 1:
        raise LtpOptionError(f"--ltp-score-length must be a positive integer, got {value}")
    return int(value)


def check_choice(name, value, allowed):
    if value not in allowed:
        raise LtpOptionError(f"--{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _argparse_type(check):
    """Turn a checker into an argparse ``type=`` (argparse then names the option in its error)."""
    def convert(text):
        try:
            return check(float(text))
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = check.__name__.replace("check_", "")
    return convert


def add_ltp_args(parser):
    group = parser.add_argument_group("LTP (learned token pruning)")
    group.add_argument("--prune-mode", choices=PRUNE_MODES,
                       help="absolute_threshold: learned per-layer thresholds on the attention score "
                            "(the method); topk: keep a fixed, linearly falling fraction of tokens "
                            "(baseline). Default: absolute_threshold")
    group.add_argument("--masking-mode", choices=MASKING_MODES,
                       help="soft: training stage 1, a differentiable sigmoid mask multiplies every "
                            "layer output and the thresholds are learned (nothing is removed); hard: "
                            "binary pruning, thresholds frozen, pruned tokens removed. Evaluation always "
                            "prunes hard. Default: hard")
    group.add_argument("--final-token-threshold", type=_argparse_type(check_threshold), metavar="F",
                       help="threshold of the last layer before learning; layer l of N starts at "
                            "F*l/N (l 0-based; layer 0 never prunes). In [0, 1]. Default: 0.01")
    group.add_argument("--token-keep-rate", type=_argparse_type(check_keep_rate), metavar="R",
                       help="topk mode: fraction of the unpadded length kept at the last layer; the "
                            "first 3 layers keep all tokens, then the rate falls linearly to R "
                            "(clamped at 0.01; R <= 1, negative allowed). Default: 0.5")
    group.add_argument("--temperature", type=_argparse_type(check_temperature), metavar="T",
                       help="soft mode: mask = sigmoid((score - threshold) / T); > 0. "
                            "Default: 1e-3 (useful range 1e-4 .. 2e-3)")
    group.add_argument("--threshold-lr", type=_argparse_type(check_threshold_lr), metavar="LR",
                       help="soft mode: learning rate of the thresholds' own parameter group (no weight "
                            "decay; follows the lr schedule in proportion to --lr). Needs --optimizer "
                            "ltp_adam. Default: --lr")
    group.add_argument("--ltp-score-norm", choices=SCORE_NORMS,
                       help="divide the received attention by a fixed length (fixed: "
                            "--ltp-score-length, the original's padded 128) or by the example's own "
                            "unpruned length (length). Default: fixed")
    group.add_argument("--ltp-score-length", type=_argparse_type(check_score_length), metavar="L",
                       help="the fixed length of --ltp-score-norm fixed (and of --ltp-reg-norm padded). "
                            "Default: 128")
    group.add_argument("--ltp-physical-removal", type=utils.eval_bool, metavar="BOOL",
                       help="hard mode and evaluation: remove pruned tokens from the batch (gather + "
                            "re-pad) before the layer's FFN (True), or only mask them out of attention "
                            "and keep computing them (False, the original's behaviour). Default: True")


def ltp_architecture_defaults(args):
    for key, value in DEFAULTS.items():
        setattr(args, key, safe_getattr(args, key, value))


@dataclass(frozen=True)
class LtpOptions:
    prune_mode: str
    masking_mode: str
    final_token_threshold: float
    token_keep_rate: float
    temperature: float
    threshold_lr: Optional[float]
    score_norm: str
    score_length: int
    physical_removal: bool

    @classmethod
    def from_args(cls, args) -> "LtpOptions":
        get = lambda key: safe_getattr(args, key, DEFAULTS[key])  # noqa: E731
        return cls(
            prune_mode=check_choice("prune-mode", get("prune_mode"), PRUNE_MODES),
            masking_mode=check_choice("masking-mode", get("masking_mode"), MASKING_MODES),
            final_token_threshold=check_threshold(get("final_token_threshold")),
            token_keep_rate=check_keep_rate(get("token_keep_rate")),
            temperature=check_temperature(get("temperature")),
            threshold_lr=check_threshold_lr(get("threshold_lr")),
            score_norm=check_choice("ltp-score-norm", get("ltp_score_norm"), SCORE_NORMS),
            score_length=check_score_length(get("ltp_score_length")),
            physical_removal=bool(get("ltp_physical_removal")),
        )

    def __post_init__(self):
        if self.prune_mode == "topk" and self.masking_mode == "soft":
            raise LtpOptionError(
                "--prune-mode topk ranks tokens and has no thresholds to learn, so it has no soft "
                "stage: use --masking-mode hard with it (soft is for absolute_threshold)")

    @property
    def learns_thresholds(self) -> bool:
        return self.prune_mode == "absolute_threshold" and self.masking_mode == "soft"
