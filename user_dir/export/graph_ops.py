"""Token selection written so that an ONNX export keeps it data-dependent.

The fairseq code paths drop tokens with Python-side decisions (``int(counts.max())``, ``if
padding.any()``, a stable ``torch.sort``). A traced export would freeze those into constants of the
example batch, and ONNX has no stable sort. Here every decision stays a tensor operation:

* the re-padded length comes from ``nonzero`` (its output length is the data's), so the gathered
  batch is exactly as long as its longest kept example, as in ``common.token_gather``;
* order-preserving selection sorts a unique key (dropped flag, then position), so stability is
  not needed; ranking by score uses ``argsort``, exported as ONNX ``TopK``, which breaks ties by
  the lower index — the same order as the stable sort of ``trbert.rollouts.descending_rank`` and
  ``ltp.scoring.keep_top_k``.
"""
from typing import Tuple

import torch


def exporting() -> bool:
    return torch.onnx.is_in_onnx_export()


def gather_kept(x: torch.Tensor, padding_mask: torch.Tensor, keep: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Keep the tokens where ``keep`` (B, T) is True, per example, in order; re-pad with zeros.

    ``x`` is (B, T, C) batch-first. Returns (x', padding') with T' = the largest kept count of the
    batch, like ``common.token_gather.gather_tokens``."""
    keep = keep & ~padding_mask
    counts = keep.sum(dim=1)
    length = keep.size(1)
    positions = torch.arange(length, device=keep.device)
    # arange(T'), with T' = max(counts) taken from the data (a traced int would be a constant)
    slots = torch.nonzero(positions < counts.max()).squeeze(1)
    # unique key: kept tokens first, each group in position order
    key = (~keep).to(torch.int64) * length + positions.unsqueeze(0)
    order = torch.argsort(key, dim=1).index_select(1, slots)
    new_padding = slots.unsqueeze(0) >= counts.unsqueeze(1)
    index = order.masked_fill(new_padding, 0)
    gathered = x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))
    return gathered.masked_fill(new_padding.unsqueeze(-1), 0.0), new_padding


def descending_rank(scores: torch.Tensor) -> torch.Tensor:
    """Rank (0 = highest) of every entry of each row (B, T); ties go to the lower position."""
    if exporting():
        order = torch.argsort(scores, dim=1, descending=True)  # ONNX TopK: ties by lower index
    else:
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    # the inverse permutation of a permutation is its argsort (values are unique)
    return torch.argsort(order, dim=1)


def keep_best(scores: torch.Tensor, eligible: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Keep the ``counts[b]`` highest-scored eligible entries of each row (B, T)."""
    ranked = scores.float().masked_fill(~eligible, float("-inf"))
    return (descending_rank(ranked) < counts.reshape(-1, 1)) & eligible
