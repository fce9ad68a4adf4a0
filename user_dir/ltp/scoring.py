"""LTP's token scores, per-layer thresholds and keep rates, and the keep decisions built on them.

Everything is a tensor operation over the whole batch (no loop over examples) so the same code
serves the masked path (pruned tokens stay in the tensor, flagged in the padding mask) and the
gathered path (pruned tokens are gone): a token's score only depends on the tokens still alive.
Position 0 is the token the classification head reads (``<s>`` with ``--init-token 0``) and is
always kept.
"""
from typing import List

import torch


def received_attention(probs: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
    """Attention each key token receives, summed over heads and over the query rows of live tokens.

    probs: (B, H, T, T) softmax probabilities (query i, key j); padding_mask: (B, T), True at padding
    and at tokens pruned earlier (their query rows must not vote). Returns float32 (B, T).
    """
    alive = (~padding_mask).to(torch.float32)
    return torch.einsum("bhij,bi->bj", probs.float(), alive)


def threshold_scores(probs, padding_mask, norm_length):
    """``s_j = (1 / (H * L)) * sum_h sum_i A_h[i, j]``; ``norm_length`` is L, (B,) or a scalar."""
    heads = probs.size(1)
    if not torch.is_tensor(norm_length):
        norm_length = torch.tensor(float(norm_length), device=probs.device)
    denom = heads * norm_length.to(torch.float32).reshape(-1, 1)
    return received_attention(probs, padding_mask) / denom


def layer_thresholds(final_token_threshold: float, delta: torch.Tensor) -> torch.Tensor:
    """``theta_l = final_token_threshold * l / N + delta_l`` for l = 0 .. N-1 (float32)."""
    n = delta.numel()
    base = final_token_threshold * torch.arange(n, dtype=torch.float32, device=delta.device) / n
    return base + delta.float()


def topk_keep_rates(token_keep_rate: float, num_layers: int) -> List[float]:
    """``r_i = max(0.01, 1 + (r - 1)(i - 2)/(N - 3))``, capped at 1 (the first 3 layers keep all)."""
    if num_layers < 4:
        raise ValueError(
            f"--prune-mode topk needs at least 4 encoder layers (its first 3 layers keep every "
            f"token), the model has {num_layers}")
    r = float(token_keep_rate)
    return [min(1.0, max(0.01, 1.0 + (r - 1.0) * (i - 2) / (num_layers - 3))) for i in range(num_layers)]


def _force_first(keep: torch.Tensor) -> torch.Tensor:
    first = torch.zeros_like(keep)
    first[:, 0] = True
    return keep | first


def keep_above_threshold(scores, padding_mask, threshold) -> torch.Tensor:
    """Hard decision of ``absolute_threshold``: prune where ``s < max(1e-5, theta)``; (B, T) bool."""
    keep = scores >= torch.clamp(threshold.float(), min=1e-5)
    return _force_first(keep) & ~padding_mask


def keep_top_k(scores, padding_mask, k: torch.Tensor) -> torch.Tensor:
    """Keep the ``k[b]`` best-scored live tokens of each example (position 0 always among them).

    A per-row rank (argsort of the scores, scattered back) compared with ``k`` gives a different
    k per example without a loop; ties are broken by position, the same in both paths.
    """
    ranked = scores.masked_fill(padding_mask, float("-inf"))
    ranked[:, 0] = float("inf")
    order = torch.argsort(ranked, dim=1, descending=True, stable=True)
    positions = torch.arange(scores.size(1), device=scores.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(1, order, positions)
    return (rank < k.reshape(-1, 1)) & ~padding_mask


def topk_counts(n0: torch.Tensor, rate: float) -> torch.Tensor:
    """``k = round(n0 * r_i)`` (at least 1: the kept ``<s>``) for the unpadded lengths ``n0``."""
    return torch.clamp(torch.round(n0.to(torch.float64) * rate), min=1).to(torch.long)


def soft_mask(scores, threshold, temperature: float) -> torch.Tensor:
    """``sigmoid((s - theta) / T)`` with position 0 fixed at 1; differentiable in ``threshold``."""
    mask = torch.sigmoid((scores - threshold.float()) / temperature)
    keep_first = torch.zeros_like(mask, dtype=torch.bool)
    keep_first[:, 0] = True
    return mask.masked_fill(keep_first, 1.0)
