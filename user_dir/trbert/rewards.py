"""Per-example task losses, rollout rewards, the REINFORCE loss and the policy-initialisation loss.

Everything returns per-example (or per-rollout) tensors; the criterion sums them over the batch
and lets fairseq divide by the number of examples (``sample_size``), as fairseq's
``sentence_prediction`` does.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from user_dir.trbert.rollouts import descending_rank


def example_task_loss(logits: torch.Tensor, targets: torch.Tensor, regression: bool,
                      teacher_logits: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Loss per example (B,): cross-entropy, or squared error summed over outputs for regression.

    With ``teacher_logits`` the target is the teacher's: soft cross-entropy against its softmax at
    temperature 1 (classification) or squared error against its prediction (regression).
    """
    if regression:
        pred = logits.view(logits.size(0), -1).float()
        ref = teacher_logits if teacher_logits is not None else targets
        return ((pred - ref.view_as(pred).float()) ** 2).sum(dim=1)
    lprobs = F.log_softmax(logits.float(), dim=-1)
    if teacher_logits is not None:
        return -(F.softmax(teacher_logits.float(), dim=-1) * lprobs).sum(dim=1)
    return F.nll_loss(lprobs, targets.view(-1), reduction="none")


def rollout_rewards(task_loss: torch.Tensor, kept: torch.Tensor, lengths: torch.Tensor,
                    alpha: float) -> torch.Tensor:
    """``r = -loss - alpha · mean_w |kept_w| / n`` per rollout.

    ``kept`` (N, W) are the tokens alive after each of the W reduction points, ``lengths`` (N,) the
    example's real length n (the original divided by the padded length 512, which makes the penalty
    depend on padding). For the paper's two points ``mean_w`` is its ``½ Σ_w``.
    """
    ratio = kept.float() / lengths.float().clamp(min=1)[:, None]
    return -task_loss.float() - alpha * ratio.mean(dim=1)


def reinforce_loss(rewards: torch.Tensor, log_probs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE with the mean reward of each example's K rollouts as baseline.

    ``rewards`` and ``log_probs`` are (B, K). Returns ``(Σ_b,k (r - b)·(-log π) / K, r - b)``; fairseq
    divides the sum by B (the sample size), which gives the spec's ``Σ (r − b)·(−log π) / (B·K)``.
    """
    advantages = (rewards - rewards.mean(dim=1, keepdim=True)).detach()
    return (advantages * -log_probs).sum() / rewards.size(1), advantages


def rank_targets(scores: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """``1 - rank/n`` of each active token's residual score (rank 0 = highest), 0 elsewhere."""
    n = active.sum(dim=1, keepdim=True).clamp(min=1)
    targets = 1.0 - descending_rank(scores, active).float() / n
    return targets.masked_fill(~active, 0.0)


def init_loss(logits: torch.Tensor, scores: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Length-normalised L1 between the policy's probabilities and the rank targets, per example."""
    diff = (torch.sigmoid(logits.float()) - rank_targets(scores, active)).abs()
    return diff.masked_fill(~active, 0.0).sum(dim=1) / active.sum(dim=1).clamp(min=1)
