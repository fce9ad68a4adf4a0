"""``--compression-rate c`` (fraction of parameters kept) -> how many groups of each type to remove.

The parameters of the *original* (unpruned) model split into ``n1``, weight matrices, which shrink
with kept rows x kept cols, and ``n2``, embeddings and biases, which shrink linearly. The kept fraction
``x`` of every group type solves ``n1 x^2 + n2 x = c (n1 + n2)``; ``p = 1 - x`` of each group type is
removed, rounded up. Layer-norm parameters are left out of the split: that is what the original
counts, and the only way to obtain its figures (313 / 7500 / 79 removed at c = 0.2 on the IWSLT arch
with dictionaries 8848 / 6632), which a test pins.

Counts are always relative to the original sizes, so a second stage (or a later ``--pruning-iter``
iteration) removes only what is still missing towards the same target.
"""
import math
from dataclasses import dataclass
from typing import Dict

from .shapes import ModelShapes

_ROUND_EPS = 1e-9  # so that an exact product such as 0.25 * 512 is not pushed up by float noise


@dataclass
class Split:
    n1: int  # weight matrices
    n2: int  # embeddings and biases


def parameter_split(shapes: ModelShapes, src_vocab: int, tgt_vocab: int, tied_output: bool) -> Split:
    n1 = n2 = 0
    for side, vocab in (("encoder", src_vocab), ("decoder", tgt_vocab)):
        s = getattr(shapes, side)
        d, h = s.embed_dim, s.heads
        n2 += vocab * d
        for layer in s.layers:
            attns = [(layer.self_qk, layer.self_vo, d)]
            if layer.cross_qk is not None:
                attns.append((layer.cross_qk, layer.cross_vo, shapes.encoder.embed_dim))
            for qk, vo, kv_d in attns:
                n1 += h * qk * (d + kv_d) + h * vo * kv_d + h * vo * d  # q, k, v, out_proj
                n2 += 2 * h * qk + h * vo + d
            n1 += 2 * d * layer.ffn
            n2 += layer.ffn + d
    if not tied_output:
        n2 += tgt_vocab * shapes.decoder.embed_dim
    return Split(n1, n2)


def kept_fraction(rate: float, split: Split) -> float:
    """The positive root x of n1 x^2 + n2 x - rate (n1 + n2) = 0."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"--compression-rate must be in (0, 1], got {rate}")
    a, b, c = split.n1, split.n2, -rate * (split.n1 + split.n2)
    if a == 0:
        return -c / b
    return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)


def removed_target(original: int, kept_fraction_now: float) -> int:
    """Groups of a type (out of ``original``) that must be gone when ``kept_fraction_now`` remains."""
    return min(original, max(0, math.ceil(original * (1.0 - kept_fraction_now) - _ROUND_EPS)))


@dataclass
class Counts:
    """Groups to remove *in total* (relative to the original model) after an iteration."""
    emb: Dict[str, int]  # per side
    fc: int  # over all layers of both sides
    head: Dict[str, int]  # per-head dims, per original head size: "encoder" / "decoder"


def target_counts(original: ModelShapes, x: float, iteration: int, iterations: int) -> Counts:
    """After ``iteration`` of ``iterations`` (1-based), a fraction ``x ** (iteration / iterations)``
    of each group type is kept; the last iteration lands exactly on ``x``."""
    frac = x if iteration == iterations else x ** (iteration / iterations)
    emb = {side: removed_target(getattr(original, side).embed_dim, frac) for side in ("encoder", "decoder")}
    fc_total = sum(layer.ffn for side in ("encoder", "decoder") for layer in getattr(original, side).layers)
    head = {side: removed_target(getattr(original, side).embed_dim // getattr(original, side).heads, frac)
            for side in ("encoder", "decoder")}
    return Counts(emb, removed_target(fc_total, frac), head)
