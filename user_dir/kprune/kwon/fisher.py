"""Stage 1a: gradients of the task loss w.r.t. the masks, and the empirical Fisher built from them.

All masks are 1 (nothing pruned) and the model weights are frozen. For every sample ``e`` the
gradient ``g_e = ∂ℓ_e/∂m`` of its task loss (cross-entropy against the gold label; squared error
for regression) w.r.t. all head and neuron masks is recorded. Then

* the diagonal Fisher of unit ``i`` is ``Σ_e g_e[i]²`` (what the mask search ranks by);
* the within-layer (block-diagonal) Fisher of layer ``l`` is ``Σ_e g_e[l] g_e[l]ᵀ`` over that
  layer's heads (or neurons) (what mask rearrangement uses).

Per-example gradients come from one backward pass per batch: every example gets its own copy of
the masks ((batch, units) tensors), and since examples do not interact in an eval-mode forward,
the gradient of the summed loss w.r.t. example ``e``'s copy is exactly ``∂ℓ_e/∂m``.

The paper defines the Fisher over examples; the original code records one gradient per
mini-batch of 32 (of the batch's mean loss). ``per_batch=True`` reproduces that: a batch's
gradient is the mean of its examples' gradients.
"""
from dataclasses import dataclass
from typing import List, Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from user_dir.kprune.kwon.masks import unit_masks_applied


def example_losses(logits: torch.Tensor, target: torch.Tensor, regression: bool) -> torch.Tensor:
    """The task loss of each example, (B,): cross-entropy, or the squared error for regression."""
    if regression:
        target = target.float().view(logits.size(0), -1)
        if target.shape != logits.shape:
            raise ValueError(f"regression output {tuple(logits.shape)} vs target {tuple(target.shape)}")
        return (logits.float() - target).pow(2).sum(-1)
    return F.cross_entropy(logits.float(), target.view(-1).long(), reduction="none")


@dataclass
class MaskGradients:
    """Per-layer gradients, ``(samples, units)`` float32 on the CPU; a sample is an example, or a
    mini-batch with ``per_batch``."""
    heads: List[torch.Tensor]
    neurons: List[torch.Tensor]
    per_batch: bool = False

    @property
    def num_samples(self) -> int:
        return self.heads[0].size(0) if self.heads else 0

    def head_fisher(self) -> List[torch.Tensor]:
        return [diagonal_fisher(g) for g in self.heads]

    def neuron_fisher(self) -> List[torch.Tensor]:
        return [diagonal_fisher(g) for g in self.neurons]


def diagonal_fisher(grads: torch.Tensor) -> torch.Tensor:
    """``Σ_samples g²`` per unit (float64)."""
    return grads.double().pow(2).sum(0)


def block_fisher(grads: torch.Tensor) -> torch.Tensor:
    """``Σ_samples g gᵀ`` over the units of one layer, (units, units) float64."""
    g = grads.double()
    return g.T @ g


def collect_mask_gradients(model, batches: Sequence, head_name: str, regression: bool,
                           per_batch: bool = False, progress: bool = False) -> MaskGradients:
    """Gradients of every batch example's task loss w.r.t. all-ones head and neuron masks.

    ``batches`` need ``target`` (the gold labels); the model's weights must not require grad.
    """
    layers = model.layers
    device = next(model.parameters()).device
    head_parts = [[] for _ in layers]
    neuron_parts = [[] for _ in layers]
    for batch in tqdm(batches, desc="kwon fisher", unit="batch", disable=not progress):
        if getattr(batch, "target", None) is None:
            raise ValueError("the Fisher stage needs the examples' labels (batch.target)")
        size = batch.tokens.size(0)
        heads = [torch.ones(size, l.num_heads, device=device, requires_grad=True) for l in layers]
        neurons = [torch.ones(size, l.ffn_dim, device=device, requires_grad=True) for l in layers]
        with torch.enable_grad(), unit_masks_applied(model, heads, neurons):
            logits = model(batch.tokens, features_only=True, classification_head_name=head_name)[0]
            loss = example_losses(logits, batch.target.to(device), regression).sum()
            grads = torch.autograd.grad(loss, heads + neurons, allow_unused=True)
        grads = [torch.zeros_like(m) if g is None else g for m, g in zip(heads + neurons, grads)]
        for l in range(len(layers)):
            for parts, g in ((head_parts, grads[l]), (neuron_parts, grads[len(layers) + l])):
                g = g.detach()
                if per_batch:  # the gradient of the batch's mean loss
                    g = g.mean(0, keepdim=True)
                parts[l].append(g.float().cpu())
    return MaskGradients([torch.cat(p) for p in head_parts], [torch.cat(p) for p in neuron_parts],
                         per_batch)
