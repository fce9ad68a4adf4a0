"""Physically drop tokens from a padded batch: per-example gather, then re-pad.

Each example keeps its own tokens in their original order; the batch is re-padded to the largest
number of kept tokens, so an example's result never depends on what else is in the batch. No Python
loop over examples: a stable sort puts the kept positions first.
"""
from typing import NamedTuple

import torch


class GatheredTokens(NamedTuple):
    x: torch.Tensor             # (B, T', C), zeros at padding
    padding_mask: torch.Tensor  # (B, T'), True at padding
    index: torch.Tensor         # (B, T'), original position of each slot (0 at padding slots)


def keep_index(padding_mask: torch.Tensor, keep: torch.Tensor):
    """Positions to gather and the new padding mask for boolean ``keep`` (B, T); padding never kept."""
    keep = keep & ~padding_mask
    counts = keep.sum(dim=1)
    new_len = int(counts.max().item()) if counts.numel() else 0
    # stable sort on "dropped" (0 = kept) keeps the original order among kept tokens
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices[:, :new_len]
    new_padding = torch.arange(new_len, device=keep.device)[None, :] >= counts[:, None]
    index = order.masked_fill(new_padding, 0)
    return index, new_padding


def gather_tokens(x: torch.Tensor, padding_mask: torch.Tensor, keep: torch.Tensor) -> GatheredTokens:
    """Keep the tokens where ``keep`` is True; ``x`` is (B, T, C) batch-first."""
    index, new_padding = keep_index(padding_mask, keep)
    gathered = x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))
    gathered = gathered.masked_fill(new_padding.unsqueeze(-1), 0.0)
    return GatheredTokens(gathered, new_padding, index)


def gather_positions(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Apply the same gather to a per-token tensor (B, T, ...) such as scores or token ids."""
    if values.dim() == 2:
        return values.gather(1, index)
    expanded = index.view(*index.shape, *([1] * (values.dim() - 2))).expand(
        -1, -1, *values.shape[2:]
    )
    return values.gather(1, expanded)
