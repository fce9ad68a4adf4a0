"""Turning tuned masks into a physically smaller model.

A kept head's value ``m_h`` multiplies its ``head_dim`` input columns of ``self_attn.out_proj``;
a kept neuron's value multiplies its input column of ``fc2``. Scaling those weight columns by the
values (the bias is untouched) computes exactly what the masked model computes; then the units
with value 0 are sliced away by the model's own ``prune_structure`` (the same slicing Kprune uses),
so the result is an ordinary ``prunable_roberta`` with per-layer sizes.
"""
import torch

from user_dir.kprune.kwon.masks import KwonMasks


def masked_logits(model, masks: KwonMasks, batch, head_name: str) -> torch.Tensor:
    """Logits of the masked (not yet folded and sliced) model."""
    with torch.no_grad(), masks.applied(model):
        return model(batch.tokens, features_only=True, classification_head_name=head_name)[0]


def fold_masks(model, masks: KwonMasks) -> None:
    """Multiply the output projections' input columns by the mask values, in place."""
    with torch.no_grad():
        for layer, heads, neurons in zip(model.layers, masks.heads, masks.neurons):
            out_proj = layer.self_attn.out_proj
            scale = heads.to(out_proj.weight).repeat_interleave(layer.self_attn.head_dim)
            out_proj.weight.mul_(scale)
            layer.fc2.weight.mul_(neurons.to(layer.fc2.weight))


def fold_and_slice(model, masks: KwonMasks) -> None:
    """Fold the values into the weights, then physically remove the units whose value is 0."""
    fold_masks(model, masks)
    heads, neurons = masks.kept_indices()
    model.prune_structure(heads, neurons)
