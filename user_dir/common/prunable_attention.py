"""Self-attention with any number of heads (zero included) at a fixed head size.

fairseq's ``MultiheadAttention`` ties the inner width to ``embed_dim`` and, on its fast path, hides
``q_proj``/``out_proj`` inside one fused call, so forward hooks on them never fire. Structured
pruning needs per-layer head counts and visible projections; token pruning needs the attention
probabilities. This module keeps fairseq's parameter names (``q_proj``, ``k_proj``, ``v_proj``,
``out_proj``) so stock RoBERTa checkpoints load unchanged, and always calls ``out_proj`` as a
module, so hooks on it see the concatenated head outputs.

Tensors are batch-first: ``x`` is (batch, time, embed_dim).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class PrunableSelfAttention(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, head_dim: int, dropout: float = 0.0):
        super().__init__()
        if num_heads < 0 or head_dim <= 0:
            raise ValueError(f"num_heads must be >= 0 and head_dim > 0, got {num_heads}, {head_dim}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.dropout = dropout
        # the scale belongs to the head size, which pruning never changes
        self.scaling = head_dim ** -0.5
        inner = num_heads * head_dim
        self.q_proj = nn.Linear(embed_dim, inner)
        self.k_proj = nn.Linear(embed_dim, inner)
        self.v_proj = nn.Linear(embed_dim, inner)
        self.out_proj = nn.Linear(inner, embed_dim)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        bsz, tgt_len, _ = t.shape
        return t.view(bsz, tgt_len, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        key_padding_mask: Optional[torch.Tensor] = None,
        need_probs: bool = False,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Returns (output (B, T, C), probabilities (B, H, T, T) if ``need_probs`` else None).

        ``key_padding_mask`` is (B, T), True at padding. With ``need_probs`` the softmax is computed
        explicitly (in float32, as fairseq does); otherwise the fused scaled-dot-product kernel runs.
        """
        bsz, tgt_len, _ = x.shape
        if self.num_heads == 0:
            # a layer with every head pruned contributes only the output bias
            empty = x.new_zeros(bsz, tgt_len, 0)
            return self.out_proj(empty), (x.new_zeros(bsz, 0, tgt_len, tgt_len) if need_probs else None)

        q = self._split_heads(self.q_proj(x) * self.scaling)
        k = self._split_heads(self.k_proj(x))
        v = self._split_heads(self.v_proj(x))
        dropout_p = self.dropout if self.training else 0.0

        if need_probs:
            scores = torch.matmul(q, k.transpose(-1, -2))
            if key_padding_mask is not None:
                scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
            probs = F.softmax(scores.float(), dim=-1).type_as(scores)
            attn = torch.matmul(F.dropout(probs, p=dropout_p, training=self.training), v)
        else:
            mask = None
            if key_padding_mask is not None:
                mask = ~key_padding_mask[:, None, None, :]
            attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=1.0)
            probs = None

        attn = attn.transpose(1, 2).reshape(bsz, tgt_len, self.num_heads * self.head_dim)
        return self.out_proj(attn), probs
