"""KPMS: knowledge-preserving mask search under a FLOPs budget.

At step ``s`` every undecided unit (all units of sublayers ``>= s``) competes for the remaining
budget by its importance per FLOP. The units are sorted by score; the smallest threshold is taken
such that the units above it cost strictly less than the budget. Only the target sublayer's part
of that selection is applied; the rest is re-scored at the next step, on the model with this
sublayer fixed. The budget then shrinks by the FLOPs of the units kept in the target, so the
final model can never cost more than ``(1 - constraint)·F_model``.
"""
from dataclasses import dataclass
from typing import List

import torch

from user_dir.kprune.knowledge import Knowledge, measured_layers
from user_dir.kprune.sublayers import ATTENTION, sublayer_of


def importance(k_pred: torch.Tensor, k_rep: torch.Tensor, lam_pred: float, lam_rep: float,
               unit_flops: float, mu: float = 1.0) -> torch.Tensor:
    """``mu·(lam_pred·K_pred + lam_rep·K_rep) / F_unit`` (mu = head_dim for heads, 1 for neurons)."""
    return mu * (lam_pred * k_pred + lam_rep * k_rep) / unit_flops


def select_within_budget(scores: torch.Tensor, flops: torch.Tensor, budget: float) -> torch.Tensor:
    """Bool mask of the highest-scoring units whose FLOPs sum stays strictly below ``budget``.

    With the units sorted by ascending score, unit ``k`` and everything above it are kept for the
    smallest ``k`` whose suffix sum of FLOPs is ``< budget`` (suffix sums shrink as ``k`` grows, so
    that ``k`` keeps the most). Ties are broken by position (stable sort).
    """
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    if scores.numel() == 0:
        return keep
    order = torch.sort(scores.double().cpu(), stable=True).indices
    suffix = flops.double().cpu()[order].flip(0).cumsum(0).flip(0)  # suffix[k] = Σ flops[order[k:]]
    fits = (suffix < budget).nonzero()
    if fits.numel():  # otherwise not even the best unit fits: keep nothing
        keep[order[int(fits[0]):]] = True
    return keep


@dataclass
class StepDecision:
    layer: int
    kind: str
    keep: torch.Tensor  # bool per unit of the target sublayer
    kept_flops: float
    candidates: int


def kpms_step(knowledge: Knowledge, s: int, num_layers: int, budget: float, head_flops: float,
              neuron_flops: float, lam_pred: float, lam_rep: float, mu: float) -> StepDecision:
    """Decide the target sublayer ``s`` from the scores of all undecided units."""
    head_layers, neuron_layers = measured_layers(s, num_layers)
    scores: List[torch.Tensor] = []
    flops: List[torch.Tensor] = []
    spans = {}
    offset = 0
    for kind, layers in ((ATTENTION, head_layers), ("ffn", neuron_layers)):
        for l in layers:
            if kind == ATTENTION:
                k_pred, k_rep, f, m = knowledge.pred_heads[l], knowledge.rep_heads[l], head_flops, mu
            else:
                k_pred, k_rep, f, m = knowledge.pred_neurons[l], knowledge.rep_neurons[l], neuron_flops, 1.0
            scores.append(importance(k_pred.cpu(), k_rep.cpu(), lam_pred, lam_rep, f, m))
            flops.append(torch.full((k_pred.numel(),), f, dtype=torch.float64))
            spans[(kind, l)] = (offset, offset + k_pred.numel())
            offset += k_pred.numel()
    all_scores = torch.cat(scores) if scores else torch.zeros(0)
    all_flops = torch.cat(flops) if flops else torch.zeros(0, dtype=torch.float64)
    selected = select_within_budget(all_scores, all_flops, budget)
    layer, kind = sublayer_of(s)
    start, end = spans[(kind, layer)]
    keep = selected[start:end].clone()
    unit = head_flops if kind == ATTENTION else neuron_flops
    return StepDecision(layer, kind, keep, float(keep.sum()) * unit, int(all_scores.numel()))
