"""Kwon et al.'s masks: one scalar per attention head and per FFN neuron.

The original puts the head mask on the attention probabilities (HuggingFace's ``head_mask``) and
the neuron mask on the input of the second FFN matrix. Scaling a head's probabilities by ``m``
scales its context vector by ``m``, so here both are multiplicative on the inputs of the output
projections, as Kprune's masks (``user_dir.kprune.masks``) are, but with one value per *unit*: a
head's value is repeated over its ``head_dim`` input columns of ``self_attn.out_proj``.

A value of 0 removes the unit; after mask tuning a kept unit carries any real value (its tuned
scale), which :func:`user_dir.kprune.kwon.apply.fold_and_slice` later folds into the weights.
A mask may also be a (batch, units) tensor: one independent copy per example, which is how the
Fisher stage gets per-example gradients from one backward pass.
"""
from contextlib import contextmanager
from typing import List, Sequence

import torch


@contextmanager
def unit_masks_applied(model, head_masks: Sequence[torch.Tensor], neuron_masks: Sequence[torch.Tensor]):
    """Multiply every layer's ``out_proj`` input by its head mask and ``fc2`` input by its neuron mask.

    Each mask is ``(units,)`` (shared by the batch) or ``(batch, units)`` (one per example).
    """
    handles = []
    for layer, head_mask, neuron_mask in zip(model.layers, head_masks, neuron_masks):
        head_dim = layer.self_attn.head_dim
        handles.append(layer.self_attn.out_proj.register_forward_pre_hook(_hook(head_mask, head_dim)))
        handles.append(layer.fc2.register_forward_pre_hook(_hook(neuron_mask, 1)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _hook(mask: torch.Tensor, repeat: int):
    def hook(module, inputs):
        m = mask.repeat_interleave(repeat, dim=-1) if repeat > 1 else mask
        if m.dim() == 2:  # per example: (B, U) against inputs (B, T, U)
            m = m.unsqueeze(1)
        return (inputs[0] * m.to(inputs[0].dtype),) + tuple(inputs[1:])

    return hook


class KwonMasks:
    """Per-layer head and neuron mask values of a prunable encoder (1 = untouched, 0 = pruned)."""

    def __init__(self, heads: List[torch.Tensor], neurons: List[torch.Tensor]):
        if len(heads) != len(neurons):
            raise ValueError("one head mask and one neuron mask per layer")
        self.heads = heads
        self.neurons = neurons

    @classmethod
    def ones(cls, model) -> "KwonMasks":
        param = next(model.parameters())
        kw = dict(device=param.device, dtype=torch.float32)
        return cls([torch.ones(l.num_heads, **kw) for l in model.layers],
                   [torch.ones(l.ffn_dim, **kw) for l in model.layers])

    @classmethod
    def from_keep(cls, head_keep: Sequence[torch.Tensor], neuron_keep: Sequence[torch.Tensor],
                  device=None) -> "KwonMasks":
        """0/1 masks from bool tensors (True = kept)."""
        return cls([k.to(device=device, dtype=torch.float32) for k in head_keep],
                   [k.to(device=device, dtype=torch.float32) for k in neuron_keep])

    def clone(self) -> "KwonMasks":
        return KwonMasks([m.clone() for m in self.heads], [m.clone() for m in self.neurons])

    @property
    def num_layers(self) -> int:
        return len(self.heads)

    def head_keep(self, layer: int) -> torch.Tensor:
        """Bool per head: kept (any nonzero value)."""
        return self.heads[layer] != 0

    def neuron_keep(self, layer: int) -> torch.Tensor:
        return self.neurons[layer] != 0

    def counts(self):
        """Per-layer (kept heads, kept neurons)."""
        return ([int(self.head_keep(l).sum()) for l in range(self.num_layers)],
                [int(self.neuron_keep(l).sum()) for l in range(self.num_layers)])

    def kept_indices(self):
        """Per-layer index tensors of the kept heads and neurons (what ``prune_structure`` takes)."""
        heads = [self.head_keep(l).nonzero().flatten().cpu() for l in range(self.num_layers)]
        neurons = [self.neuron_keep(l).nonzero().flatten().cpu() for l in range(self.num_layers)]
        return heads, neurons

    def applied(self, model):
        return unit_masks_applied(model, self.heads, self.neurons)
