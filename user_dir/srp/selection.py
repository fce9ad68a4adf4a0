"""Importance of every group and the choice of the ones to remove.

Score = ``-dL/dc`` at ``c = 1`` (signed, no absolute value; the lowest are pruned), with the model in
eval mode (no dropout), the loss summed over tokens (not normalised) and the KD term included when a
teacher is attached. Granularity: embedding dims per side; FFN neurons globally over all layers of
both sides; q·k and v·o dims per attention module and per head (every head of a module loses the same
count), q·k and v·o chosen independently.
"""
from typing import Dict, Iterable, List

import torch
import torch.distributed as dist

from .compression_rate import Counts
from .connectivity import Gate
from .shapes import ModelShapes


def score_gates(model, criterion, batches: Iterable[dict], gates: List[Gate]) -> Dict[str, torch.Tensor]:
    """Sum of -dL/dc over ``batches`` for every gate (c held at 1)."""
    was_training, was_gated = model.training, model.gated
    saved = [g.c.clone() for g in gates]
    model.eval()
    model.set_gating(True)
    totals = {g.name: torch.zeros_like(g.c) for g in gates}
    try:
        for g in gates:
            g.c.fill_(1.0)
            g.c.requires_grad_(True)
        for sample in batches:
            loss, _, _ = criterion(model, sample)
            grads = torch.autograd.grad(loss, [g.c for g in gates], allow_unused=True)
            for g, grad in zip(gates, grads):
                if grad is not None:
                    totals[g.name] -= grad.detach()
    finally:
        for g, c in zip(gates, saved):
            g.c.requires_grad_(False)
            g.c.copy_(c)
        model.set_gating(was_gated)
        model.train(was_training)
    return totals


def all_reduce_scores(scores: Dict[str, torch.Tensor]) -> None:
    """Data-parallel workers scored different batches: sum their scores (in place)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    names = sorted(scores)
    flat = torch.cat([scores[n].reshape(-1) for n in names])
    dist.all_reduce(flat)
    offset = 0
    for n in names:
        k = scores[n].numel()
        scores[n].copy_(flat[offset:offset + k].view_as(scores[n]))
        offset += k


def broadcast_selection(gates: List[Gate]) -> None:
    """Make every worker hold rank 0's choice, whatever floating-point ties did elsewhere."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    flat = torch.cat([g.sel.to(torch.uint8) for g in gates])
    dist.broadcast(flat, src=0)
    offset = 0
    for g in gates:
        g.sel.copy_(flat[offset:offset + g.size].bool())
        offset += g.size


def _lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of the k lowest entries along the last dim (stable: ties go to the lower index)."""
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if k > 0:
        idx = torch.sort(scores, dim=-1, stable=True).indices[..., :k]
        mask.scatter_(-1, idx, True)
    return mask


def select(gates: List[Gate], scores: Dict[str, torch.Tensor], kinds, counts: Counts,
           original: ModelShapes) -> Dict[str, int]:
    """Mark in each gate's ``sel`` the groups to remove now so that ``counts`` are reached.

    ``counts`` are totals relative to the ``original`` (unpruned) model; what earlier stages or
    iterations already removed (original minus current size) is subtracted. Returns the number of
    groups selected per kind."""
    chosen = {k: 0 for k in ("emb", "fc", "qk", "vo")}
    for g in gates:
        g.sel.zero_()
    if "emb" in kinds:
        for g in (g for g in gates if g.kind == "emb"):
            done = getattr(original, g.side).embed_dim - g.size
            n = max(0, min(counts.emb[g.side] - done, g.size - 1))  # keep at least one residual dim
            g.sel.copy_(_lowest(scores[g.name], n))
            chosen["emb"] += n
    if "fc" in kinds:
        fcs = [g for g in gates if g.kind == "fc"]
        total = sum(layer.ffn for side in ("encoder", "decoder") for layer in getattr(original, side).layers)
        current = sum(g.size for g in fcs)
        n = max(0, min(counts.fc - (total - current), current))
        if n > 0:
            mask = _lowest(torch.cat([scores[g.name] for g in fcs]), n)
            offset = 0
            for g in fcs:
                g.sel.copy_(mask[offset:offset + g.size])
                offset += g.size
        chosen["fc"] += n
    for kind in ("qk", "vo"):
        if kind not in kinds:
            continue
        for g in (g for g in gates if g.kind == kind):
            side = getattr(original, g.side)
            per_head = g.size // g.heads
            n = max(0, min(counts.head[g.side] - (side.embed_dim // side.heads - per_head), per_head))
            g.sel.copy_(_lowest(scores[g.name].view(g.heads, per_head), n).view(-1))
            chosen[kind] += n * g.heads
    return chosen
