"""Kprune's FLOPs model of an encoder, and an fvcore cross-check of it.

The search budget is expressed in these analytic FLOPs. A multiply-add counts as 2 FLOPs. For a
sequence of ``n`` tokens, model width ``d`` and head size ``d_h``:

* one attention head: Q, K, V projections ``6·d·d_h·n``, scores and weighted sum ``4·n²·d_h``,
  its share of the output projection ``2·d_h·n·d``;
* one FFN neuron: a row of fc1 and a column of fc2, ``4·n·d``.

Embeddings, LayerNorm, softmax, GELU, biases and the classifier are left out, as in the paper.
``n`` is the average length of the task's own sequences (our tokenisation, ``<s>``/``</s>``
included); the original hard-coded BERT-tokenised dev-set lengths.
"""
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn


def head_flops(n: float, d: int, d_h: int) -> float:
    return 6.0 * d * d_h * n + 4.0 * n * n * d_h + 2.0 * d_h * n * d


def neuron_flops(n: float, d: int) -> float:
    return 4.0 * n * d


@dataclass(frozen=True)
class FlopsModel:
    n: float  # average sequence length
    d: int  # model width
    d_h: int  # head size

    @property
    def head(self) -> float:
        return head_flops(self.n, self.d, self.d_h)

    @property
    def neuron(self) -> float:
        return neuron_flops(self.n, self.d)

    def total(self, heads: Sequence[int], neurons: Sequence[int]) -> float:
        """``Σ_l h_l·F_head + f_l·F_neuron`` for per-layer head and neuron counts."""
        return sum(h * self.head + f * self.neuron for h, f in zip(heads, neurons))


def flops_model_for(model, avg_length: float) -> FlopsModel:
    layer = model.layers[0]
    return FlopsModel(n=float(avg_length), d=layer.embed_dim, d_h=layer.self_attn.head_dim)


def model_sizes(model):
    """Per-layer (heads, FFN neurons) of a prunable encoder model."""
    return [l.num_heads for l in model.layers], [l.ffn_dim for l in model.layers]


class _UnfusedLayers(nn.Module):
    """The encoder layers with attention on its explicit (matmul + softmax) path.

    The default path calls ``scaled_dot_product_attention``, for which fvcore has no counter: the
    ``n²`` terms would read 0.
    """

    def __init__(self, layers):
        super().__init__()
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x, _ = layer.attention_block(x, None, need_probs=True)
            x = layer.ffn_block(x)
        return x


def fvcore_layer_flops(model, n: int) -> float:
    """FLOPs (2 per multiply-add) of the encoder layers on one sequence of ``n`` tokens, per fvcore.

    Uses the shared fvcore helper (``user_dir.common.counting``), which keeps only the matrix
    products, i.e. exactly what the analytic model covers (fvcore does not count biases either).
    """
    from user_dir.common.counting import fvcore_matmul_flops

    layers = _UnfusedLayers(model.layers)
    param = next(model.parameters())
    x = torch.randn(1, int(n), layers.layers[0].embed_dim, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            macs = sum(fvcore_matmul_flops(layers, (x,)).values())
    finally:
        model.train(was_training)
    return 2.0 * float(macs)
