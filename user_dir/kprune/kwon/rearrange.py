"""Stage 2: mask rearrangement with the within-layer (block-diagonal) Fisher.

The search ranks units by the *diagonal* Fisher, i.e. as if pruning one unit never interacted with
pruning another. Within one layer, the loss increase of pruning a set ``P`` of units is
approximated by the quadratic form ``1_Pᵀ F_l 1_P`` of the layer's full Fisher block
``F_l = Σ_e g_e g_eᵀ`` (``= Σ_e (Σ_{i∈P} g_e[i])²``). Kwon et al. improve ``P`` greedily, keeping
the per-layer count the search chose:

    start from the pruned set P; for every kept unit j, in ascending order of diagonal Fisher:
        add j to P, then drop from P the unit whose removal leaves the smallest 1_Pᵀ F 1_P

Dropping ``j`` itself gives back the previous ``P``, so the objective never increases. The
original evaluates each step from the gradient vectors; with ``v = F 1_S`` for the enlarged set
``S``, removing unit ``k`` leaves ``1_Sᵀ F 1_S − 2 v_k + F_kk``, so one step is O(|S|) here. The
original starts from the ``|P|`` units of lowest diagonal Fisher, which is the search's pruned set
(up to ties); here the given mask's pruned set is the start.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
import torch

from user_dir.kprune.kwon.fisher import block_fisher


def pruned_loss(keep: torch.Tensor, fisher: torch.Tensor) -> float:
    """``1_Pᵀ F 1_P`` for the pruned set ``P = ~keep``."""
    m = (~keep.cpu()).double()
    return float(m @ fisher.double().cpu() @ m)


def greedy_rearrange(keep: torch.Tensor, fisher: torch.Tensor) -> torch.Tensor:
    """A bool keep-mask with as many kept units as ``keep``, improved by the greedy swaps."""
    keep = keep.cpu().bool()
    num_kept = int(keep.sum())
    if num_kept == 0 or num_kept == keep.numel():
        return keep.clone()
    F = fisher.double().cpu().numpy()
    diag = np.diag(F)
    pruned = [int(i) for i in np.flatnonzero(~keep.numpy())]
    pruned.sort(key=lambda i: diag[i])  # the original's list order (ascending diagonal Fisher)
    kept = np.flatnonzero(keep.numpy())
    candidates = kept[np.argsort(diag[kept], kind="stable")]
    v = F[pruned].sum(axis=0)  # F 1_P (F is symmetric: rows are columns)
    for j in candidates:
        pruned.append(int(j))
        v = v + F[j]
        members = np.asarray(pruned)
        drop = int(np.argmin(diag[members] - 2.0 * v[members]))  # first minimum, as argmin there
        removed = pruned.pop(drop)
        v = v - F[removed]
    out = torch.ones_like(keep)
    out[pruned] = False
    return out


@dataclass
class LayerRearrangement:
    layer: int
    kind: str  # "heads" / "neurons"
    kept: int
    swapped: int  # units whose keep/prune decision changed
    loss_before: float  # 1_Pᵀ F 1_P of the search's pruned set
    loss_after: float


def rearrange_layers(keeps: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], kind: str
                     ) -> Tuple[List[torch.Tensor], List[LayerRearrangement]]:
    """Rearrange every layer's mask with its Fisher block from ``grads[l]`` (samples, units)."""
    out, log = [], []
    for l, (keep, g) in enumerate(zip(keeps, grads)):
        fisher = block_fisher(g)
        new = greedy_rearrange(keep, fisher)
        out.append(new)
        log.append(LayerRearrangement(l, kind, int(new.sum()), int((new != keep.cpu()).sum()) // 2,
                                      pruned_loss(keep, fisher), pruned_loss(new, fisher)))
    return out, log
