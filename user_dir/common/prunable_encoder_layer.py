"""A Transformer encoder layer with its own head count and FFN width, split into two blocks.

Token pruning removes tokens between the attention block and the FFN block (LTP) or between
layers (TR-BERT); structured pruning (Kprune) gives every layer its own number of heads and FFN
neurons, down to zero. Computation and parameter names follow fairseq's
``TransformerEncoderLayerBase`` (post-LN by default, pre-LN with ``normalize_before``), batch-first.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from fairseq import utils
from fairseq.modules import FairseqDropout

from user_dir.common.prunable_attention import PrunableSelfAttention
from user_dir.common.slicing import slice_linear


class PrunableEncoderLayer(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        head_dim: int,
        ffn_dim: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        activation_fn: str = "gelu",
        normalize_before: bool = False,
        layernorm_eps: float = 1e-5,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.normalize_before = normalize_before
        self.self_attn = PrunableSelfAttention(embed_dim, num_heads, head_dim, attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(embed_dim, eps=layernorm_eps)
        self.fc1 = nn.Linear(embed_dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, embed_dim)
        self.final_layer_norm = nn.LayerNorm(embed_dim, eps=layernorm_eps)
        self.activation_fn = utils.get_activation_fn(activation_fn)
        self.dropout_module = FairseqDropout(dropout, module_name=self.__class__.__name__)
        self.activation_dropout_module = FairseqDropout(
            activation_dropout, module_name=self.__class__.__name__
        )

    @property
    def num_heads(self) -> int:
        return self.self_attn.num_heads

    @property
    def ffn_dim(self) -> int:
        return self.fc1.out_features

    def attention_block(
        self, x: torch.Tensor, padding_mask: Optional[torch.Tensor], need_probs: bool = False
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Self-attention sublayer with residual and LayerNorm; also returns the probabilities."""
        residual = x
        if self.normalize_before:
            x = self.self_attn_layer_norm(x)
        x, probs = self.self_attn(x, key_padding_mask=padding_mask, need_probs=need_probs)
        x = residual + self.dropout_module(x)
        if not self.normalize_before:
            x = self.self_attn_layer_norm(x)
        return x, probs

    def ffn_block(self, x: torch.Tensor) -> torch.Tensor:
        """Position-wise FFN sublayer with residual and LayerNorm (each token independently)."""
        residual = x
        if self.normalize_before:
            x = self.final_layer_norm(x)
        x = self.activation_dropout_module(self.activation_fn(self.fc1(x)))
        x = residual + self.dropout_module(self.fc2(x))
        if not self.normalize_before:
            x = self.final_layer_norm(x)
        return x

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x, _ = self.attention_block(x, padding_mask)
        return self.ffn_block(x)

    # ---- physical structured pruning -------------------------------------------------------
    def prune_heads(self, keep_heads: torch.Tensor) -> None:
        """Keep only the heads in ``keep_heads`` (indices into the current heads, any order kept sorted)."""
        attn = self.self_attn
        keep_heads = torch.as_tensor(keep_heads, dtype=torch.long).sort().values
        dims = (keep_heads[:, None] * attn.head_dim + torch.arange(attn.head_dim, device=keep_heads.device)).reshape(-1)
        dims = dims.to(attn.q_proj.weight.device)
        attn.q_proj = slice_linear(attn.q_proj, keep_out=dims)
        attn.k_proj = slice_linear(attn.k_proj, keep_out=dims)
        attn.v_proj = slice_linear(attn.v_proj, keep_out=dims)
        attn.out_proj = slice_linear(attn.out_proj, keep_in=dims)
        attn.num_heads = int(keep_heads.numel())

    def prune_ffn(self, keep_neurons: torch.Tensor) -> None:
        """Keep only the FFN neurons in ``keep_neurons`` (indices into the current neurons)."""
        keep = torch.as_tensor(keep_neurons, dtype=torch.long).sort().values
        keep = keep.to(self.fc1.weight.device)
        self.fc1 = slice_linear(self.fc1, keep_out=keep)
        self.fc2 = slice_linear(self.fc2, keep_in=keep)
