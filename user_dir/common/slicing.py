"""Physical slicing of standard modules: keep some rows/columns and return a smaller module.

Every structured-pruning method ends by cutting the weights it no longer needs, so that the model is
really smaller and faster. The helpers build new modules (so shapes, ``in_features`` and friends are
consistent) and copy the kept entries; ``requires_grad``, dtype and device carry over.
"""
from typing import Optional

import torch
import torch.nn as nn


def _as_index(keep: torch.Tensor, device) -> torch.Tensor:
    keep = torch.as_tensor(keep, device=device)
    if keep.dtype == torch.bool:
        keep = keep.nonzero(as_tuple=True)[0]
    return keep.long()


def slice_linear(
    linear: nn.Linear,
    keep_out: Optional[torch.Tensor] = None,
    keep_in: Optional[torch.Tensor] = None,
) -> nn.Linear:
    """Keep output rows ``keep_out`` and input columns ``keep_in`` (index or bool mask; None = all)."""
    weight = linear.weight.detach()
    if keep_out is not None:
        weight = weight.index_select(0, _as_index(keep_out, weight.device))
    if keep_in is not None:
        weight = weight.index_select(1, _as_index(keep_in, weight.device))
    has_bias = linear.bias is not None
    new = nn.Linear(weight.size(1), weight.size(0), bias=has_bias,
                    device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if has_bias:
            bias = linear.bias.detach()
            if keep_out is not None:
                bias = bias.index_select(0, _as_index(keep_out, bias.device))
            new.bias.copy_(bias)
    new.weight.requires_grad_(linear.weight.requires_grad)
    if has_bias:
        new.bias.requires_grad_(linear.bias.requires_grad)
    return new


def slice_layernorm(norm: nn.LayerNorm, keep: torch.Tensor) -> nn.LayerNorm:
    """A LayerNorm over the kept dimensions only (same eps, affine parameters sliced)."""
    idx = _as_index(keep, norm.weight.device if norm.weight is not None else None)
    new = nn.LayerNorm(idx.numel(), eps=norm.eps, elementwise_affine=norm.elementwise_affine)
    if norm.elementwise_affine:
        new = new.to(device=norm.weight.device, dtype=norm.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(norm.weight.detach().index_select(0, idx))
            if norm.bias is not None:
                new.bias.copy_(norm.bias.detach().index_select(0, idx))
    return new


def slice_embedding(embedding: nn.Embedding, keep_dims: torch.Tensor) -> nn.Embedding:
    """Keep embedding dimensions (columns); the vocabulary and padding index are unchanged."""
    weight = embedding.weight.detach()
    weight = weight.index_select(1, _as_index(keep_dims, weight.device))
    new = nn.Embedding(weight.size(0), weight.size(1), padding_idx=embedding.padding_idx,
                       device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
    new.weight.requires_grad_(embedding.weight.requires_grad)
    return new
