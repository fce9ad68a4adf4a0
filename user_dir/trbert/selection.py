"""Inference-time token selection of a TR-BERT model: the learned policies, or a fixed budget.

``--trbert-select`` picks how the tokens that go on past each reduction point are chosen when the
model runs in eval mode (the criterion's training stages always sample from the policies):

* ``policy`` (default): the trained policies, a token stays when ``p >= 0.5`` (TR-BERT itself);
* ``policy_topk``: each example keeps the ``round(r_w · n)`` active tokens with the highest policy
  probability, ``n`` being its active tokens at point w (the real tokens entering it, ``<s>`` not
  counted: it always stays). With the checkpoint of the policy-initialisation stage this is the
  residual-strategy selection without RL, at a kept ratio chosen from outside;
* ``attention_topk``: each example keeps the ``round(r_w · n)`` active tokens that received the most
  attention in the layer just before the point (summed over heads and over the query rows of the
  live tokens, as PoWER-BERT's and LTP's top-k scoring); no policy runs, so any fine-tuned encoder
  rebuilt as a TR-BERT arch works.

``--trbert-keep-ratios R1,R2`` gives the ``r_w``, one per reduction point; both top-k modes need
it. Ties are broken by position (stable sort); kept tokens keep their original order.
"""
import logging
from typing import List, Optional, Sequence

import torch

from user_dir.trbert.rollouts import descending_rank

logger = logging.getLogger(__name__)

SELECT_MODES = ("policy", "policy_topk", "attention_topk")
TOPK_MODES = ("policy_topk", "attention_topk")


def parse_select(value) -> str:
    """``--trbert-select`` -> one of SELECT_MODES (default ``policy``)."""
    if value in (None, ""):
        return "policy"
    if value not in SELECT_MODES:
        raise ValueError(f"--trbert-select {value!r} is unknown; allowed: {', '.join(SELECT_MODES)}")
    return str(value)


def parse_keep_ratios(value, reduce_layers: Sequence[int], select: str) -> Optional[List[float]]:
    """``--trbert-keep-ratios`` ("0.5,0.3", a number or a list) -> one ratio in [0, 1] per point.

    Required by the top-k modes; ignored (with a warning) by ``policy``.
    """
    points = list(reduce_layers)
    example = ",".join(["0.5"] * len(points))
    if value in (None, "") or (isinstance(value, (list, tuple)) and not value):
        if select in TOPK_MODES:
            raise ValueError(f"--trbert-select {select} needs --trbert-keep-ratios: one kept ratio per "
                             f"reduction point ({len(points)}, before layers {points}), e.g. "
                             f"--trbert-keep-ratios {example}")
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [v for v in str(value).replace(" ", "").split(",")]
    try:
        ratios = [float(v) for v in items]
    except (TypeError, ValueError):
        raise ValueError(f"--trbert-keep-ratios must be comma-separated numbers in [0, 1], one per "
                         f"reduction point, got {value!r}") from None
    if len(ratios) != len(points):
        raise ValueError(f"--trbert-keep-ratios {value}: needs one ratio per reduction point "
                         f"({len(points)}, before layers {points}), got {len(ratios)}")
    bad = [r for r in ratios if not 0.0 <= r <= 1.0]
    if bad:
        raise ValueError(f"--trbert-keep-ratios {value}: ratios must be in [0, 1] (the fraction of an "
                         f"example's active tokens kept at each point), got {bad}")
    if select not in TOPK_MODES:
        logger.warning("--trbert-keep-ratios %s is ignored by --trbert-select %s (only %s use it)",
                       value, select, " and ".join(TOPK_MODES))
        return None
    return ratios


def keep_counts(active: torch.Tensor, ratio: float) -> torch.Tensor:
    """``round(ratio · n)`` per example (B,), n = the active tokens of the row (round half to even)."""
    n = active.sum(dim=1).to(torch.float64)
    return torch.round(n * float(ratio)).to(torch.long)


def topk_keep(scores: torch.Tensor, active: torch.Tensor, ratio: float) -> torch.Tensor:
    """Keep the ``round(ratio · n)`` active tokens of each row with the highest ``scores`` (B, T)."""
    rank = descending_rank(scores, active)
    return (rank < keep_counts(active, ratio)[:, None]) & active


def received_attention(probs: torch.Tensor, padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Attention each key token receives: ``Σ_heads Σ_live queries A[h, i, j]``, float32 (B, T).

    ``probs`` (B, H, T, T) are softmax probabilities (query i, key j); ``padding_mask`` (B, T) is True
    at padding (their query rows do not vote, their keys receive 0), or None without padding.
    """
    if padding_mask is None:
        return probs.float().sum(dim=(1, 2))
    return torch.einsum("bhij,bi->bj", probs.float(), (~padding_mask).to(torch.float32))
