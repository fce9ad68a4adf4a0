"""Kprune's masks: multiplicative, on the inputs of each layer's output projections.

A head mask has one entry per head dimension (``heads·head_dim`` values on the input of
``self_attn.out_proj``), a neuron mask one entry per FFN neuron (input of ``fc2``). Masks start at
1; a pruned unit's entries become 0. Multiplying the *input* of the output projection by 0 removes
exactly that unit's contribution, so a 0/1-masked model equals the physically sliced one (the test
suite checks it). During knowledge measurement the masks carry gradients; model weights never do.

The hooks are forward pre-hooks on the ``out_proj`` and ``fc2`` modules. Our encoder core always
calls both as modules (unlike fairseq's fused ``MultiheadAttention`` fast path), so they fire.
"""
from contextlib import contextmanager
from typing import List

import torch


class KpruneMasks:
    def __init__(self, model):
        param = next(model.parameters())
        self.head_dim = model.layers[0].self_attn.head_dim
        self.num_heads = [layer.num_heads for layer in model.layers]
        self.num_neurons = [layer.ffn_dim for layer in model.layers]
        kw = dict(device=param.device, dtype=param.dtype)
        # leaf tensors, so autograd can return d loss / d mask for them
        self.heads: List[torch.Tensor] = [torch.ones(h * self.head_dim, **kw) for h in self.num_heads]
        self.neurons: List[torch.Tensor] = [torch.ones(f, **kw) for f in self.num_neurons]
        self.fired = 0  # hook calls, so tests can prove the hooks are live

    @property
    def num_layers(self) -> int:
        return len(self.heads)

    # ---- unit-level views -----------------------------------------------------------------
    def head_keep(self, layer: int) -> torch.Tensor:
        """Bool per head: still kept."""
        return self.heads[layer].detach().view(-1, self.head_dim)[:, 0] > 0

    def neuron_keep(self, layer: int) -> torch.Tensor:
        return self.neurons[layer].detach() > 0

    def keep_heads(self, layer: int, keep: torch.Tensor) -> None:
        """Keep only the heads where ``keep`` is True (bool per head) in ``layer``."""
        with torch.no_grad():
            self.heads[layer].copy_(keep.to(self.heads[layer]).repeat_interleave(self.head_dim))

    def keep_neurons(self, layer: int, keep: torch.Tensor) -> None:
        with torch.no_grad():
            self.neurons[layer].copy_(keep.to(self.neurons[layer]))

    def kept_indices(self):
        """Per-layer index tensors of the kept heads and neurons (what ``prune_structure`` takes)."""
        heads = [self.head_keep(l).nonzero().flatten().cpu() for l in range(self.num_layers)]
        neurons = [self.neuron_keep(l).nonzero().flatten().cpu() for l in range(self.num_layers)]
        return heads, neurons

    def requires_grad_(self, flag: bool = True) -> "KpruneMasks":
        for m in self.heads + self.neurons:
            m.requires_grad_(flag)
        return self

    # ---- applying them to a model ---------------------------------------------------------
    @contextmanager
    def applied(self, model):
        """Multiply the inputs of every layer's ``out_proj`` and ``fc2`` by the masks."""
        handles = []
        for layer, head_mask, neuron_mask in zip(model.layers, self.heads, self.neurons):
            handles.append(layer.self_attn.out_proj.register_forward_pre_hook(self._hook(head_mask)))
            handles.append(layer.fc2.register_forward_pre_hook(self._hook(neuron_mask)))
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    def _hook(self, mask: torch.Tensor):
        def hook(module, inputs):
            self.fired += 1
            return (inputs[0] * mask,) + tuple(inputs[1:])

        return hook
