"""Tiny srp models (unpruned, pruned to the extremes, mid-pruning with gates on) for the export tests."""
import torch

from tests.srp.helpers import batch, build, randomize
from user_dir.srp.slicing import slice_selected


def select(model, seed: int = 3):
    """Mark groups of every kind for removal, with the extremes the graphs must handle: a whole FFN
    on each side, every q·k dim of a self- and a cross-attention module, every v·o dim of one."""
    g_ = torch.Generator().manual_seed(seed)
    gates = {g.name: g for g in model.gates()}
    for g in gates.values():
        g.sel.zero_()
        if g.kind in ("qk", "vo"):  # per head, the same count in every head
            w = g.size // g.heads
            g.sel.copy_(torch.cat([torch.randperm(w, generator=g_) < w // 2 for _ in range(g.heads)]))
        else:
            g.sel.copy_(torch.rand(g.size, generator=g_) < 0.4)
            if g.kind == "emb":
                g.sel[0] = False  # keep at least one residual dim
    for name in ("encoder.layers.1.fc_c", "decoder.layers.1.fc_c", "encoder.layers.0.self_attn_qk_c",
                 "decoder.layers.1.encoder_attn_qk_c", "decoder.layers.0.self_attn_qk_c",
                 "decoder.layers.0.encoder_attn_vo_c"):
        gates[name].sel.fill_(True)
    for g in gates.values():
        g.c.copy_((~g.sel).float())
    return model


def tiny_srp(pruned: bool = False, gated: bool = False, seed: int = 0, **overrides):
    """(model, task): a randomised srp_tiny, optionally sliced by :func:`select`, or left with the
    gates of an unfinished pruning iteration on (partly shrunk connectivity)."""
    model, task = build(seed=seed, share_decoder_input_output_embed=True, **overrides)
    randomize(model, seed + 1)
    model.eval()
    if pruned:
        select(model)
        slice_selected(model)
    if gated:
        select(model, seed=5)
        for g in model.gates():
            g.c.mul_(0.5).add_(0.25 * (~g.sel).float())  # mid-way: selected at 0.25, others at 0.75..1
        model.set_gating(True)
    return model, task


__all__ = ["tiny_srp", "select", "batch"]
