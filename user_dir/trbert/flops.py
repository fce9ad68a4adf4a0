"""Analytic encoder cost of a reduced forward pass, per example (multiply-accumulates).

Per layer with L live tokens: projections ``4·d·(heads·head_dim)`` plus FFN ``2·d·ffn`` per token,
plus attention ``2·L²·(heads·head_dim)``; for an unpruned layer that is the spec's
``12·L·d² + 2·L²·d``. Each policy adds ``L·(d·h + h)`` for the L tokens entering it (h = 32) when
it runs (not with ``--trbert-select attention_topk``, whose received-attention sums are left out
like LTP's).
Relative FLOPs compare with the same model running every token through every layer; per-layer
head/FFN sizes are honoured, so token reduction composes with structured pruning.
"""
from typing import Tuple

import torch


def layer_macs(tokens: torch.Tensor, layer) -> torch.Tensor:
    """Cost of one encoder layer for ``tokens`` (B,) live tokens."""
    inner = layer.num_heads * layer.self_attn.head_dim
    d = layer.embed_dim
    return tokens * (4 * d * inner + 2 * d * layer.ffn_dim) + 2 * tokens * tokens * inner


def policy_macs(tokens: torch.Tensor, policy) -> torch.Tensor:
    return tokens * (policy.fc1.in_features * policy.fc1.out_features + policy.fc2.in_features)


def pass_macs(layers, policies, control) -> Tuple[torch.Tensor, torch.Tensor]:
    """(reduced, unreduced) cost per example of the pass recorded in ``control``.

    ``layers`` are the encoder layers, ``policies`` the policy networks in reduction-point order;
    ``control`` is the :class:`ReductionControl` after the forward call (no points = no reduction).
    """
    lengths = control.lengths.double()
    points = {p.layer: (i, p) for i, p in enumerate(control.points)}
    alive = lengths
    reduced = torch.zeros_like(lengths)
    full = torch.zeros_like(lengths)
    for idx, layer in enumerate(layers):
        if idx in points:
            i, point = points[idx]
            if getattr(point, "policy_ran", True):  # not under attention_topk
                reduced = reduced + policy_macs(point.entering.double(), policies[i])
            alive = point.kept.double()
        reduced = reduced + layer_macs(alive, layer)
        full = full + layer_macs(lengths, layer)
    return reduced, full
