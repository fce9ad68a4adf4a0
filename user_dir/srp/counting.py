"""Parameters and FLOPs per sentence of an srp model, from its actual (possibly pruned) shapes.

FLOPs of one teacher-forced forward of a sentence pair with ``src_len`` source and ``tgt_len`` target
positions: every projection at every position it is applied to, the two attention products of every
module (cross-attention with its own q·k / v·o widths and the encoder length), and the output
projection. (The original's formula hard-coded 50 tokens, 4 heads and 6 layers, used self-attention
dims for cross-attention and counted d x d for the attention-weighted sum.) ``fvcore_check`` traces the
same forward with fvcore.
"""
from typing import Dict

import torch
import torch.nn as nn

from user_dir.common.counting import attention_flops, count_parameters, fvcore_matmul_flops, linear_flops


def parameters(model) -> int:
    """Model parameters; the connectivity vectors are buffers and are not counted."""
    return count_parameters(model)


def _attn(attn, q_rows, k_rows) -> int:
    f = linear_flops(attn.q_proj, q_rows) + linear_flops(attn.k_proj, k_rows)
    f += linear_flops(attn.v_proj, k_rows) + linear_flops(attn.out_proj, q_rows)
    return f + attention_flops(q_rows, k_rows, attn.q_proj.weight.size(0), attn.v_proj.weight.size(0))


def _ffn(layer, rows) -> int:
    return linear_flops(layer.fc1, rows) + linear_flops(layer.fc2, rows)


def flops_per_sentence(model, src_len: int, tgt_len: int) -> Dict[str, int]:
    s, t = int(src_len), int(tgt_len)
    enc = sum(_attn(layer.self_attn, s, s) + _ffn(layer, s) for layer in model.encoder.layers)
    dec = sum(_attn(layer.self_attn, t, t) + _attn(layer.encoder_attn, t, s) + _ffn(layer, t)
              for layer in model.decoder.layers)
    out = linear_flops(model.decoder.output_projection, t)
    return {"encoder": enc, "decoder": dec, "output_projection": out, "total": enc + dec + out}


class _LogitsOnly(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src_tokens, src_lengths, prev_output_tokens):
        return self.model(src_tokens, src_lengths, prev_output_tokens)[0]


@torch.no_grad()
def fvcore_check(model, src_len: int, tgt_len: int) -> Dict[str, int]:
    """fvcore's count of the same forward (one unpadded sentence pair, gates off, eval mode)."""
    was_training = model.training
    model.eval()
    dictionary = model.encoder.dictionary
    first = dictionary.nspecial
    src = torch.arange(src_len).remainder(len(dictionary) - first).add(first).unsqueeze(0)
    prev = torch.arange(tgt_len).remainder(len(model.decoder.dictionary) - first).add(first).unsqueeze(0)
    device = next(model.parameters()).device
    src, prev = src.to(device), prev.to(device)
    try:
        by_op = fvcore_matmul_flops(_LogitsOnly(model), (src, torch.tensor([src_len], device=device), prev))
    finally:
        model.train(was_training)
    return {"by_operator": by_op, "total": sum(by_op.values())}
