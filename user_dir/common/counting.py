"""Parameters and FLOPs of a model from its actual module shapes, with an fvcore cross-check.

FLOPs follow fvcore's convention (one multiply-add = one flop) and count the matrix products, which
is where a Transformer's work is: every ``nn.Linear`` applied to each position it sees, and the two
attention products ``q·k`` and ``attn·v`` of each attention module. Counting walks the real modules
(their weight shapes), so a pruned model with uneven layers is counted as it is, not by formula.
``fvcore_matmul_flops`` traces a forward and sums fvcore's counts of the same operators.
"""
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch.nn as nn

MATMUL_OPS = ("aten::linear", "aten::addmm", "aten::matmul", "aten::bmm", "aten::mm", "aten::einsum",
              "aten::scaled_dot_product_attention", "aten::baddbmm")


def count_parameters(model: nn.Module, exclude: Optional[Callable[[str], bool]] = None) -> int:
    """Distinct parameters (tied weights once); buffers, e.g. SRP's connectivity vectors, never."""
    seen, total = set(), 0
    for name, p in model.named_parameters():
        if id(p) in seen or (exclude is not None and exclude(name)):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def linear_flops(linear: nn.Linear, positions: int) -> int:
    return positions * linear.weight.numel()


def attention_flops(q_rows: int, k_rows: int, qk_width: int, vo_width: int) -> int:
    """``q·k^T`` over all (query, key) pairs plus ``attn·v``; widths summed over heads."""
    return q_rows * k_rows * (qk_width + vo_width)


def fvcore_matmul_flops(module: nn.Module, inputs: Tuple, ops: Iterable[str] = MATMUL_OPS) -> Dict[str, int]:
    """fvcore's FLOP count per operator for ``module(*inputs)``, restricted to matrix products.

    ``scaled_dot_product_attention`` has no fvcore handle: we give it one that counts its two
    products the way fvcore counts ``matmul``."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(module, inputs)
    analysis.set_op_handle("aten::scaled_dot_product_attention", _sdpa_flop_jit)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = analysis.by_operator()
    wanted = {op.split("::")[-1] for op in ops}
    return {op: int(n) for op, n in by_op.items() if op in wanted}


def _sdpa_flop_jit(inputs, outputs):
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(inputs[i]) for i in range(3))
    batch = 1
    for s in q[:-2]:
        batch *= s
    tq, dqk = q[-2], q[-1]
    tk, dv = k[-2], v[-1]
    return batch * tq * tk * (dqk + dv)
