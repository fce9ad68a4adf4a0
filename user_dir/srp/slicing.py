"""Physical pruning of an SRP model: cut every group whose ``sel`` is set, in place.

Embeddings (the tied output projection follows, being the same tensor), layer-norm parameters, q/k/v
rows and columns, out_proj/fc2 rows and columns, fc1, the positional-column indices and the gate
buffers themselves. The ``head_dim ** -0.5`` scale of the original head size and ``sqrt(d)`` of the
original width are kept (see ``attention.py`` / ``model.py``). Parameters keep their identity, so the
optimizer can have its state sliced from the returned records and training goes on in the same run.
"""
from typing import List

import torch

from user_dir.srp.param_slicing import InplaceSlicer, SliceRecord


@torch.no_grad()
def slice_selected(model, model_cfg=None) -> List[SliceRecord]:
    slicer = InplaceSlicer()
    cut_sides = []
    for g in model.gates():
        if not bool(g.sel.any()):
            continue
        keep = (~g.sel).nonzero(as_tuple=True)[0]
        if g.kind == "emb":
            cut_sides.append(getattr(model, g.side))
        for param, dim in g.params:
            slicer.param_(param, dim, keep)
        for owner, name, dim in g.buffers:
            slicer.buffer_(owner, name, dim, keep)
    for side in cut_sides:
        # the non-weighted norm keeps normalising over the width it had (zeros in the cut dims); the
        # weighted one has no notion of absent dims, its width is the kept width
        if model.cfg.weighted_layernorm:
            side.ln_width.fill_(side.embedding_c.numel())
    for g in model.gates():
        g.c.fill_(1.0)
        g.sel.zero_()
    model.sync_after_reshape(model_cfg)
    return slicer.records
