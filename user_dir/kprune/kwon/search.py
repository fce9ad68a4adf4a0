"""Stage 1b: Kwon et al.'s hierarchical mask search under a FLOPs budget.

Heads and neurons are ranked *globally* (over all layers) by their diagonal Fisher. For every
candidate number ``h`` of kept heads, the ``h`` best heads are kept and then as many of the best
neurons as the remaining budget pays for, ``n(h) = ⌊(B − h·F_head) / F_neuron⌋``. The candidate
with the largest kept importance ``Σ top-h head Fisher + Σ top-n(h) neuron Fisher`` wins (the
first one on ties, as the original's strict ``>``).

Cost model: the original counts MACs per head ``4·n·d·d_h + 2·n²·d_h`` and per neuron ``2·n·d``;
Kprune's FLOPs model (``user_dir.kprune.flops``) is exactly twice that, so a budget relative to the
unpruned model is the same in both. Two deliberate differences from the original code, both so
the budget is a hard limit: ``h`` only runs over counts whose heads alone fit (the original also
tried larger ``h`` with 0 neurons, which can exceed the budget), and ``h = 0`` is a candidate too
(the original started at 1, which cannot fit when not even one head does).
"""
import math
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
import torch


@dataclass
class SearchResult:
    head_keep: List[torch.Tensor]  # bool per head, per layer
    neuron_keep: List[torch.Tensor]  # bool per neuron, per layer
    num_heads: int  # total kept over all layers
    num_neurons: int
    importance: float  # Σ Fisher of the kept units
    cost: float  # FLOPs of the kept units
    candidates: int  # head counts that were tried

    def summary(self) -> dict:
        return {"num_heads": self.num_heads, "num_neurons": self.num_neurons,
                "importance": self.importance, "cost": self.cost, "candidates": self.candidates}


def _ranked(scores: Sequence[torch.Tensor]):
    """All layers' scores flattened, the order by descending score (stable), and the prefix sums."""
    flat = torch.cat([s.double().cpu().flatten() for s in scores]) if scores else torch.zeros(0)
    order = torch.sort(flat, descending=True, stable=True).indices
    prefix = np.concatenate([[0.0], np.cumsum(flat[order].numpy())])  # prefix[k] = Σ best k
    return order, prefix


def _split(keep_flat: torch.Tensor, sizes: Sequence[int]) -> List[torch.Tensor]:
    return list(torch.split(keep_flat, list(sizes)))


def search_budget(head_fisher: Sequence[torch.Tensor], neuron_fisher: Sequence[torch.Tensor],
                  head_cost: float, neuron_cost: float, budget: float) -> SearchResult:
    """The hierarchical search: kept heads/neurons per layer whose cost is ``<= budget``."""
    if head_cost <= 0 or neuron_cost <= 0:
        raise ValueError("unit costs must be positive")
    head_order, head_prefix = _ranked(head_fisher)
    neuron_order, neuron_prefix = _ranked(neuron_fisher)
    total_heads, total_neurons = len(head_order), len(neuron_order)

    max_heads = min(total_heads, int(math.floor(budget / head_cost))) if budget >= 0 else -1
    if max_heads < 0:
        raise ValueError(f"a negative budget ({budget}) cannot be met")
    h = np.arange(max_heads + 1)
    left = budget - h * head_cost
    n = np.clip(np.floor(left / neuron_cost).astype(np.int64), 0, total_neurons)
    n = np.where(h * head_cost + n * neuron_cost > budget, n - 1, n)  # floor's rounding, never over
    n = np.clip(n, 0, total_neurons)
    value = head_prefix[h] + neuron_prefix[n]
    best = int(np.argmax(value))  # first maximum
    num_heads, num_neurons = int(h[best]), int(n[best])

    head_flat = torch.zeros(total_heads, dtype=torch.bool)
    head_flat[head_order[:num_heads]] = True
    neuron_flat = torch.zeros(total_neurons, dtype=torch.bool)
    neuron_flat[neuron_order[:num_neurons]] = True
    return SearchResult(
        head_keep=_split(head_flat, [s.numel() for s in head_fisher]),
        neuron_keep=_split(neuron_flat, [s.numel() for s in neuron_fisher]),
        num_heads=num_heads, num_neurons=num_neurons, importance=float(value[best]),
        cost=num_heads * head_cost + num_neurons * neuron_cost, candidates=len(h))
