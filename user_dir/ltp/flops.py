"""LTP's FLOPs model of the encoder, per example.

With ``n_a`` tokens entering a layer and ``n_f`` left after its pruning (which happens between the
attention block and the FFN):

    MAC = 2 * d_attn * n_a^2 + 4 * d * d_attn * n_a + 2 * d * d_ff * n_f

``d_attn`` = heads x head size is ``d`` for an unpruned layer, which gives the method's formula
``2 d n_a^2 + 4 d^2 n_a + 2 d d_ff n_f``; keeping it separate lets a structurally pruned layer
(per-layer heads/FFN from Kprune) be counted with the same code. FLOPs = 2 * MAC. Embeddings, the
classification head, softmax and LayerNorm are excluded, as in LTP.
"""
from typing import List, NamedTuple, Sequence

import torch


class LayerDims(NamedTuple):
    d: int        # model width
    d_attn: int   # heads * head size
    d_ff: int     # FFN neurons


def layer_dims(layer) -> LayerDims:
    attn = layer.self_attn
    return LayerDims(layer.embed_dim, attn.num_heads * attn.head_dim, layer.ffn_dim)


def layer_macs(dims: LayerDims, n_a, n_f):
    """MACs of one layer; ``n_a``/``n_f`` may be numbers or tensors of per-example counts."""
    d, d_attn, d_ff = dims
    return 2 * d_attn * n_a * n_a + 4 * d * d_attn * n_a + 2 * d * d_ff * n_f


def encoder_macs(dims: Sequence[LayerDims], n_in: List[torch.Tensor], n_out: List[torch.Tensor]):
    """Per-example MACs (float64, (B,)) given each layer's entering and surviving token counts."""
    total = torch.zeros_like(n_in[0], dtype=torch.float64)
    for dim, n_a, n_f in zip(dims, n_in, n_out):
        total = total + layer_macs(dim, n_a.double(), n_f.double())
    return total


def unpruned_macs(dims: Sequence[LayerDims], n0: torch.Tensor):
    """Per-example MACs of the same encoder with every token kept in every layer."""
    n0 = n0.double()
    return sum(layer_macs(dim, n0, n0) for dim in dims)
