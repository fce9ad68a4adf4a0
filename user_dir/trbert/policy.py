"""The token-selection policy of one reduction point, and where the reduction points go.

A policy maps each token's hidden state to the probability of keeping it:
``Linear(d -> 32) -> GELU -> Linear(32 -> 1) -> sigmoid``. We keep the pre-sigmoid logit around,
because log-probabilities computed from logits (``logsigmoid``) stay finite where ``log(p)`` of a
saturated sigmoid would be ``-inf``.
"""
import math
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class TokenPolicy(nn.Module):
    def __init__(self, embed_dim: int, hidden_dim: int = 32):
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Keep-logits (B, T) for batch-first hidden states ``x`` (B, T, C)."""
        return self.fc2(F.gelu(self.fc1(x))).squeeze(-1)


def action_log_prob(logits: torch.Tensor, keep: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Per-example log-probability of the actions at one reduction point, normalised per token.

    ``keep`` (B, T) are the actions, ``active`` (B, T) the tokens the policy decided on (real tokens
    except ``<s>``, whose action is fixed). The sum over active tokens is divided by their number, so
    long and short examples weigh alike (the spec's "normalised by active token count").
    """
    keep = keep.to(logits.dtype)
    logp = keep * F.logsigmoid(logits) + (1.0 - keep) * F.logsigmoid(-logits)
    logp = logp.masked_fill(~active, 0.0)
    return logp.sum(dim=1) / active.sum(dim=1).clamp(min=1).to(logits.dtype)


def default_reduce_layers(num_layers: int) -> List[int]:
    """The paper's two points (before 0-based layers 1 and N/2) for an N-layer encoder.

    12 layers give ``[1, 6]``; MiniLM's 6 layers give ``[1, 3]``. The second point is moved to 2
    when N/2 would coincide with the first (N < 4), and dropped when the encoder is too shallow.
    """
    if num_layers < 2:
        raise ValueError(f"TR-BERT needs an encoder of at least 2 layers, got {num_layers}")
    second = max(2, num_layers // 2)
    return [1, second] if second < num_layers else [1]


def parse_reduce_layers(value: Optional[str], num_layers: int) -> List[int]:
    """``--trbert-reduce-layers`` ("1,6") -> sorted layer indices, each in [1, N-1]."""
    if value in (None, ""):
        return default_reduce_layers(num_layers)
    allowed = f"allowed: distinct integers in 1..{num_layers - 1} for a {num_layers}-layer encoder"
    try:
        layers = [int(v) for v in str(value).split(",")]
    except ValueError:
        raise ValueError(f"--trbert-reduce-layers must be comma-separated integers, got {value!r} ({allowed})") from None
    bad = [v for v in layers if not 1 <= v <= num_layers - 1]
    if bad:
        raise ValueError(f"--trbert-reduce-layers {value}: layer(s) {bad} out of range ({allowed}; "
                         f"a point k drops tokens before 0-based layer k)")
    if len(set(layers)) != len(layers):
        raise ValueError(f"--trbert-reduce-layers {value}: duplicate layers ({allowed})")
    return sorted(layers)


def default_score_layer(num_layers: int, reduce_layers: List[int]) -> int:
    """Where the residual-strategy gradient is taken: ``h_ceil(3N/4)``, as the original.

    ``h_k`` is the hidden state entering 0-based layer k (h_N is the encoder output). The original
    takes ``hidden_states[1:][back_r]`` with ``back_r`` 8 for BERT (12 layers) and 4 for DistilBERT
    (6 layers): the output of 1-based layer 9 / 5, i.e. h_9 of 12 and h_5 of 6. It must lie after the
    last reduction point.
    """
    return min(num_layers, max(reduce_layers[-1] + 1, math.ceil(3 * num_layers / 4)))
