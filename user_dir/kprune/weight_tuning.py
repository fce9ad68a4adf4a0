"""KPWT: knowledge-preserving weight tuning of a sublayer's output projection.

After sublayer ``s``'s mask is fixed, the surviving columns of its output projection (``out_proj``
for heads, ``fc2`` for neurons) are refit so that the pruned sublayer reproduces the teacher's
pre-LayerNorm sum as well as a linear map can:

    min_W || X_s W - (Y_T - R - b) ||²

with ``X_s`` the surviving inputs of the projection in the *current* model, ``R`` the residual
(the sublayer's input), ``b`` the bias (kept) and ``Y_T`` the teacher's ``residual + out_proj(x)``.
The normal equations are accumulated over all real tokens in float64 and solved with ``lstsq``
(rank-deficient safe on CPU), optionally with a small ridge ``ridge·mean(diag(XᵀX))·I``.
"""
from dataclasses import dataclass
from typing import Sequence

import torch

from user_dir.kprune.sublayers import ATTENTION, run_sublayer


@dataclass
class TuningResult:
    error_before: float  # squared reconstruction error with the weights as they were
    error_after: float  # ... after the least-squares refit
    target_energy: float  # || Y_T - R - b ||², to read the errors relatively
    columns: int


def output_projection(layer, kind: str):
    return layer.self_attn.out_proj if kind == ATTENTION else layer.fc2


def _sq_error(W: torch.Tensor, G: torch.Tensor, C: torch.Tensor, yy: torch.Tensor) -> float:
    """``||X W - Y||²`` from ``G = XᵀX``, ``C = XᵀY``, ``yy = ||Y||²``."""
    return float((W * (G @ W)).sum() - 2.0 * (W * C).sum() + yy)


def normal_equations(layer, kind: str, columns: torch.Tensor, batches: Sequence,
                     inputs: Sequence[torch.Tensor], teacher_sums: Sequence[torch.Tensor]):
    """Accumulate ``XᵀX``, ``Xᵀ(Y_T-R-b)`` and ``||Y_T-R-b||²`` over the real tokens of all batches."""
    proj = output_projection(layer, kind)
    k, d = columns.numel(), proj.out_features
    dev = proj.weight.device
    G = torch.zeros(k, k, dtype=torch.float64, device=dev)
    C = torch.zeros(k, d, dtype=torch.float64, device=dev)
    yy = torch.zeros((), dtype=torch.float64, device=dev)
    seen = {}
    handle = proj.register_forward_pre_hook(lambda module, args: seen.__setitem__("x", args[0]))
    try:
        with torch.no_grad():
            for batch, x, y_t in zip(batches, inputs, teacher_sums):
                run_sublayer(layer, kind, x, batch.padding_mask)
                real = batch.real
                X = seen["x"][real][:, columns].double()
                target = y_t.double() - x[real].double() - proj.bias.detach().double()
                G += X.T @ X
                C += X.T @ target
                yy += target.pow(2).sum()
    finally:
        handle.remove()
    return G, C, yy


def tune_sublayer(layer, kind: str, keep_columns: torch.Tensor, batches: Sequence,
                  inputs: Sequence[torch.Tensor], teacher_sums: Sequence[torch.Tensor],
                  ridge: float = 0.0) -> TuningResult:
    """Refit the kept columns of the sublayer's output projection in place; bias unchanged.

    ``keep_columns`` is a bool per input column of the projection (per head dimension for heads).
    """
    proj = output_projection(layer, kind)
    columns = keep_columns.nonzero().flatten().to(proj.weight.device)
    G, C, yy = normal_equations(layer, kind, columns, batches, inputs, teacher_sums)
    # solve on the CPU: its lstsq handles rank-deficient systems, CUDA's does not
    G, C, yy = G.cpu(), C.cpu(), yy.cpu()
    W_old = proj.weight.detach()[:, columns].double().T.cpu()
    before = _sq_error(W_old, G, C, yy)
    A = G
    if ridge > 0:
        A = G + ridge * G.diagonal().mean() * torch.eye(G.size(0), dtype=G.dtype)
    W = torch.linalg.lstsq(A, C).solution
    after = _sq_error(W, G, C, yy)
    with torch.no_grad():
        proj.weight[:, columns] = W.T.to(proj.weight)
    return TuningResult(before, after, float(yy), int(columns.numel()))
