"""Sinusoidal positions of the original width, restricted to the kept embedding dims.

The spec's embedding is ``sqrt(d) E[tok] + PE[:, kept_dims]``: a pruned model must add the same
sinusoid columns the unpruned one added to those dims, so the kept indices (into the original width)
are a persistent buffer and the table is computed for the original width, then column-selected.
"""
import torch
import torch.nn as nn
from fairseq import utils
from fairseq.modules import SinusoidalPositionalEmbedding


class KeptSinusoidalPositions(nn.Module):
    def __init__(self, full_dim: int, kept_dim: int, padding_idx: int, max_positions: int):
        super().__init__()
        self.full_dim = full_dim
        self.padding_idx = padding_idx
        self.max_positions = max_positions
        self.register_buffer("kept", torch.arange(kept_dim))
        self._table = None  # cache, rebuilt when the kept dims, device or length change

    def reset_cache(self):
        self._table = None

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self.reset_cache()

    def _get_table(self, needed: int, dtype, device):
        t = self._table
        if t is None or t.size(0) < needed or t.device != device or t.dtype != dtype or t.size(1) != self.kept.numel():
            full = SinusoidalPositionalEmbedding.get_embedding(
                max(needed, self.padding_idx + 1 + 256), self.full_dim, self.padding_idx)
            self._table = full.index_select(1, self.kept.cpu()).to(device=device, dtype=dtype)
        return self._table

    def forward(self, tokens: torch.Tensor, incremental_state=None, dtype=torch.float32) -> torch.Tensor:
        bsz, seq_len = tokens.shape
        table = self._get_table(self.padding_idx + 1 + seq_len, dtype, tokens.device)
        if incremental_state is not None:
            # the step being decoded is position seq_len (fairseq's convention, no left padding)
            return table[self.padding_idx + seq_len].expand(bsz, 1, -1)
        positions = utils.make_positions(tokens, self.padding_idx)
        return table.index_select(0, positions.reshape(-1)).view(bsz, seq_len, -1)
