"""How tokens are selected in one forward pass, and what the pass records for the criterion.

A :class:`ReductionControl` travels with one forward call of the model. It says how actions are
chosen (``greedy`` at inference: the model's ``--trbert-select``, by default the policies' p >= 0.5,
see :mod:`user_dir.trbert.selection`; ``sample`` a ~ Bernoulli(p) in training; ``keep_all`` for the
policy-initialisation stage) and, for the guided rollouts of the RL stage, which rows follow the
expert (top-K residual-score tokens). During the pass it keeps, per reduction point, the
policy logits, the actions and the token counts, and the original position of every surviving
token, so the criterion can compute log-probabilities, rewards and FLOPs afterwards.
"""
from dataclasses import dataclass, field
from typing import List, Optional

import torch

MODES = ("greedy", "sample", "keep_all")


@dataclass
class PointTrace:
    layer: int                # the reduction happens before this 0-based layer
    logits: Optional[torch.Tensor]  # (B, T) keep-logits of the tokens entering the point (None: no policy ran)
    keep: torch.Tensor        # (B, T) actions (True = keep), <s> included, False at padding
    active: torch.Tensor      # (B, T) tokens the policy decided on: real tokens except <s>
    entering: torch.Tensor    # (B,) real tokens entering the point
    kept: torch.Tensor        # (B,) real tokens leaving it (<s> included)
    positions: torch.Tensor   # (B, T) input position of each token entering the point
    received: Optional[torch.Tensor] = None  # (B, T) received attention (--trbert-select attention_topk)

    @property
    def policy_ran(self) -> bool:
        """Whether the policy network scored the tokens (its cost counts in the FLOPs)."""
        return self.logits is not None


@dataclass
class ReductionControl:
    mode: str = "greedy"
    # > 1: the input batch is repeated this many times at the first reduction point (rollouts of an
    # example adjacent), so the layers below it run once per example instead of once per rollout
    repeat: int = 1
    guide_rows: Optional[torch.Tensor] = None    # (B,) bool: rows that take the expert action
    guide_scores: Optional[torch.Tensor] = None  # (B, T_in, W) residual scores at input positions
    points: List[PointTrace] = field(default_factory=list)
    lengths: Optional[torch.Tensor] = None       # (B,) real input length (<s> and </s> included)
    positions: Optional[torch.Tensor] = None     # (B, T_cur) input position of each current slot

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown reduction mode {self.mode!r}; allowed: {', '.join(MODES)}")

    @classmethod
    def default(cls, training: bool) -> "ReductionControl":
        return cls("sample" if training else "greedy")

    def start(self, padding_mask: torch.Tensor) -> None:
        """Reset the per-pass record for an input batch with this padding mask (B, T)."""
        self.points = []
        self.lengths = (~padding_mask).sum(dim=1)
        bsz, seq_len = padding_mask.shape
        self.positions = torch.arange(seq_len, device=padding_mask.device).expand(bsz, seq_len)

    def repeat_rows(self, *tensors: torch.Tensor):
        """Repeat the batch ``repeat`` times (rollouts adjacent), and the per-pass record with it."""
        if self.repeat == 1:
            return tensors
        self.lengths = self.lengths.repeat_interleave(self.repeat, dim=0)
        self.positions = self.positions.repeat_interleave(self.repeat, dim=0)
        return tuple(t.repeat_interleave(self.repeat, dim=0) for t in tensors)

    def decide(self, logits: torch.Tensor, active: torch.Tensor, point: int) -> torch.Tensor:
        """Actions (B, T) for the active tokens; the caller adds <s>."""
        if self.mode == "keep_all":
            keep = torch.ones_like(active)
        elif self.mode == "greedy":
            keep = logits >= 0.0  # sigmoid(z) >= 0.5
        else:
            with torch.no_grad():
                keep = torch.bernoulli(torch.sigmoid(logits.float())).bool()
        if self.guide_rows is not None and bool(self.guide_rows.any()):
            scores = self.guide_scores[..., point].gather(1, self.positions)
            with torch.no_grad():
                expert = guide_actions(torch.sigmoid(logits.float()), active, scores)
            keep = torch.where(self.guide_rows[:, None], expert, keep)
        return keep & active

    def record(self, trace: PointTrace, slot_index: torch.Tensor) -> None:
        """Store one point's trace; ``slot_index`` (B, T') maps new slots to the old ones."""
        self.points.append(trace)
        self.positions = self.positions.gather(1, slot_index)

    def kept_counts(self) -> torch.Tensor:
        """(B, W) real tokens alive after each reduction point."""
        return torch.stack([p.kept for p in self.points], dim=1)


def guide_actions(probs: torch.Tensor, active: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The expert action: keep the K active tokens with the highest residual score, K = round(sum p).

    ``probs``, ``active`` and ``scores`` are (B, T). The budget K is the number of tokens the current
    policy expects to keep, so the expert only changes *which* tokens are kept, not how many.
    Ties are broken by position (stable sort).
    """
    budget = torch.round((probs * active).sum(dim=1)).long()
    return (descending_rank(scores, active) < budget[:, None]) & active


def descending_rank(scores: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Rank (0 = highest) of each active token's score within its row; inactive tokens rank last."""
    masked = scores.float().masked_fill(~active, float("-inf"))
    order = torch.sort(masked, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.size(1), device=order.device).expand_as(order))
    return rank
