"""Knowledge measurement: how much predictive and representational knowledge each unit carries.

Measured on the *current*, partly pruned model at every one of the 2L steps, for the units that
are still undecided (sublayers ``>= s``):

* predictive: ``K_pred = Σ_batches ½ g² / N_samples`` with ``g`` the gradient of the batch's
  predictive loss w.r.t. the unit's mask entry (a diagonal-Fisher estimate of the loss increase
  when the entry goes to 0). The loss is ``T²·KL(p_teacher || softmax(z/T))`` (KL summed over
  classes, averaged over the batch), or the MSE to the teacher's raw outputs for regression.
* representational: ``K_rep = Σ_tokens x_i² · mean_k W[k,i]² / N_tokens`` with ``x`` the input of
  the sublayer's output projection and ``W`` its weight: a diagonal proxy of how much the
  sublayer output moves when input ``i`` is removed.

A head's value is the mean over its ``head_dim`` mask entries (``mu`` in the importance turns it
back into a sum). Padding positions are never counted as tokens.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

from user_dir.kprune.sublayers import ATTENTION, run_from, sublayer_of


def predictive_loss(logits: torch.Tensor, target: torch.Tensor, T: float, regression: bool) -> torch.Tensor:
    """Student-vs-teacher loss of one batch.

    ``target`` is the teacher's ``softmax(z/T)`` for classification and its raw output for
    regression. Both regression tensors are (B, num_outputs): no [B,1]-vs-[B] broadcasting.
    """
    if regression:
        if logits.shape != target.shape:
            raise ValueError(f"regression output {tuple(logits.shape)} vs teacher {tuple(target.shape)}")
        return F.mse_loss(logits.float(), target.float())
    log_student = F.log_softmax(logits.float() / T, dim=-1)
    return (T ** 2) * F.kl_div(log_student, target.float(), reduction="batchmean")


def teacher_target(logits: torch.Tensor, T: float, regression: bool) -> torch.Tensor:
    if regression:
        return logits.detach().float()
    return F.softmax(logits.detach().float() / T, dim=-1)


@dataclass
class Knowledge:
    """Per-layer unit scores; ``None`` for sublayers that were not measured (already decided)."""
    pred_heads: List[Optional[torch.Tensor]]
    pred_neurons: List[Optional[torch.Tensor]]
    rep_heads: List[Optional[torch.Tensor]]
    rep_neurons: List[Optional[torch.Tensor]]


class _SquaredInputTap:
    """Forward pre-hook that sums ``x²`` of a module's input over real tokens (float64)."""

    def __init__(self, module):
        self.sum = torch.zeros(module.in_features, dtype=torch.float64, device=module.weight.device)
        self.real = None
        self.handle = module.register_forward_pre_hook(self)

    def __call__(self, module, inputs):
        x = inputs[0].detach()
        # Σ over real tokens as one (1 x BT) @ (BT x D) product: no gathered copy of x; the
        # batch's partial sum (float32) is accumulated across batches in float64
        self.sum += torch.einsum("bt,btd->d", self.real.to(x.dtype), x * x).double()


def _per_head(values: torch.Tensor, head_dim: int) -> torch.Tensor:
    return values.view(-1, head_dim).mean(1)


def measured_layers(s: int, num_layers: int):
    """Layers whose heads / neurons are undecided at step ``s`` (sublayers ``>= s``)."""
    layer, kind = sublayer_of(s)
    head_layers = list(range(layer if kind == ATTENTION else layer + 1, num_layers))
    neuron_layers = list(range(layer, num_layers))
    return head_layers, neuron_layers


def measure_knowledge(model, masks, batches: Sequence, inputs: Sequence[torch.Tensor],
                      targets: Sequence[torch.Tensor], s: int, T: float, regression: bool,
                      head_name: str) -> Knowledge:
    """Scores of all undecided units; ``inputs[b]`` is batch b's input of sublayer ``s``.

    ``masks`` must already be applied to ``model`` (``with masks.applied(model)``): the taps are
    registered after the mask hooks and therefore see the masked inputs.
    """
    L = masks.num_layers
    head_layers, neuron_layers = measured_layers(s, L)
    layers = model.layers
    head_taps = {l: _SquaredInputTap(layers[l].self_attn.out_proj) for l in head_layers}
    neuron_taps = {l: _SquaredInputTap(layers[l].fc2) for l in neuron_layers}
    wrt = [masks.heads[l] for l in head_layers] + [masks.neurons[l] for l in neuron_layers]
    grad_sq = [torch.zeros_like(m, dtype=torch.float64) for m in wrt]
    n_samples, n_tokens = 0, 0
    masks.requires_grad_(True)
    try:
        for batch, x, target in zip(batches, inputs, targets):
            for tap in list(head_taps.values()) + list(neuron_taps.values()):
                tap.real = batch.real
            with torch.enable_grad():
                logits = run_from(model, s, x, batch.padding_mask, head_name)
                # Where the student's output equals the teacher's bit for bit (every batch at step
                # 0, before anything is pruned) the loss gradient is 0 (KL: T·(p_S - p_T), MSE:
                # 2(z_S - z_T)); a backward pass would only return rounding noise (~1e-9), so it
                # is skipped and the predictive scores are exactly 0 there.
                if torch.equal(teacher_target(logits, T, regression), target):
                    grads = [None] * len(wrt)
                else:
                    loss = predictive_loss(logits, target, T, regression)
                    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
            for acc, g in zip(grad_sq, grads):
                if g is not None:
                    acc += 0.5 * g.double().pow(2)
            n_samples += batch.tokens.size(0)
            n_tokens += batch.num_tokens
    finally:
        masks.requires_grad_(False)
        for tap in list(head_taps.values()) + list(neuron_taps.values()):
            tap.handle.remove()

    hd = masks.head_dim
    result = Knowledge([None] * L, [None] * L, [None] * L, [None] * L)
    for i, l in enumerate(head_layers):
        result.pred_heads[l] = _per_head(grad_sq[i] / n_samples, hd)
        w_sq = layers[l].self_attn.out_proj.weight.detach().double().pow(2).mean(0)
        result.rep_heads[l] = _per_head(head_taps[l].sum * w_sq / n_tokens, hd)
    for i, l in enumerate(neuron_layers):
        result.pred_neurons[l] = grad_sq[len(head_layers) + i] / n_samples
        w_sq = layers[l].fc2.weight.detach().double().pow(2).mean(0)
        result.rep_neurons[l] = neuron_taps[l].sum * w_sq / n_tokens
    return result
