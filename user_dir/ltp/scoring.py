"""LTP's token scores, per-layer thresholds and keep rates, and the keep decisions built on them.

Everything is a tensor operation over the whole batch (no loop over examples) so the same code
serves the masked path (pruned tokens stay in the tensor, flagged in the padding mask) and the
gathered path (pruned tokens are gone): a token's score only depends on the tokens still alive.
Position 0 is the token the classification head reads (``<s>`` with ``--init-token 0``) and is
always kept.

The hard decision compares the *received* attention with ``max(1e-5, theta) * H * L`` instead of
dividing every score by ``H * L``: the same test, one tensor operation fewer per layer, which
matters at batch size 1 where per-layer overhead competes with the FLOPs saved.
"""
from typing import List, Optional

import torch

SCORE_FLOOR = 1e-5  # a token scoring below max(1e-5, theta) is pruned


def received_attention(probs: torch.Tensor, padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Attention each key token receives, summed over heads and over the query rows of live tokens.

    probs: (B, H, T, T) softmax probabilities (query i, key j); padding_mask: (B, T), True at padding
    and at tokens pruned earlier (their query rows must not vote), or None when there is none.
    Masked keys receive exactly 0. Returns float32 (B, T).
    """
    if padding_mask is None:
        return probs.float().sum(dim=(1, 2))
    alive = (~padding_mask).to(torch.float32)
    return torch.einsum("bhij,bi->bj", probs.float(), alive)


def threshold_scores(probs, padding_mask, norm_length):
    """``s_j = (1 / (H * L)) * sum_h sum_i A_h[i, j]``; ``norm_length`` is L, (B,) or a number."""
    heads = probs.size(1)
    if torch.is_tensor(norm_length):
        norm_length = norm_length.to(torch.float32).reshape(-1, 1)
    return received_attention(probs, padding_mask) / (heads * norm_length)


def layer_thresholds(final_token_threshold: float, delta: torch.Tensor) -> torch.Tensor:
    """``theta_l = final_token_threshold * l / N + delta_l`` for l = 0 .. N-1 (float32)."""
    n = delta.numel()
    base = final_token_threshold * torch.arange(n, dtype=torch.float32, device=delta.device) / n
    return base + delta.float()


def received_cut(theta: float, heads: int, norm_length):
    """The received attention that scores exactly ``max(1e-5, theta)``: ``max(1e-5, theta) * H * L``.

    ``norm_length`` is a number (fixed norm) or a (B, 1) float tensor of lengths (length norm).
    """
    return max(SCORE_FLOOR, theta) * heads * norm_length


def keep_received(received: torch.Tensor, cut) -> torch.Tensor:
    """Hard decision of ``absolute_threshold``: keep where ``s >= max(1e-5, theta)``, plus position 0.

    Padding and earlier-pruned tokens receive 0 < cut, so they are never kept.
    """
    keep = received >= cut
    keep[:, 0] = True
    return keep


def topk_keep_rates(token_keep_rate: float, num_layers: int) -> List[float]:
    """``r_i = max(0.01, 1 + (r - 1)(i - 2)/(N - 3))``, capped at 1 (the first 3 layers keep all)."""
    if num_layers < 4:
        raise ValueError(
            f"--prune-mode topk needs at least 4 encoder layers (its first 3 layers keep every "
            f"token), the model has {num_layers}")
    r = float(token_keep_rate)
    return [min(1.0, max(0.01, 1.0 + (r - 1.0) * (i - 2) / (num_layers - 3))) for i in range(num_layers)]


def topk_counts(n0: torch.Tensor, rate: float) -> torch.Tensor:
    """``k = round(n0 * r_i)`` (at least 1: the kept ``<s>``) for the unpadded lengths ``n0``."""
    return torch.clamp(torch.round(n0.to(torch.float64) * rate), min=1).to(torch.long)


def keep_top_k(scores, padding_mask: Optional[torch.Tensor], k: torch.Tensor) -> torch.Tensor:
    """Keep the ``k[b]`` best-scored live tokens of each example (position 0 always among them).

    A per-row rank (argsort of the scores, scattered back) compared with ``k`` gives a different
    k per example without a loop; ties are broken by position, the same in both paths.
    """
    ranked = scores if padding_mask is None else scores.masked_fill(padding_mask, float("-inf"))
    ranked[:, 0] = float("inf")
    order = torch.argsort(ranked, dim=1, descending=True, stable=True)
    positions = torch.arange(scores.size(1), device=scores.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(1, order, positions)
    keep = rank < k.reshape(-1, 1)
    return keep if padding_mask is None else keep & ~padding_mask


def soft_mask(scores, threshold, temperature: float) -> torch.Tensor:
    """``sigmoid((s - theta) / T)`` with position 0 fixed at 1; differentiable in ``threshold``."""
    mask = torch.sigmoid((scores - threshold.float()) / temperature)
    keep_first = torch.zeros_like(mask, dtype=torch.bool)
    keep_first[:, 0] = True
    return mask.masked_fill(keep_first, 1.0)
