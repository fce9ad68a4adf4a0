"""In-place physical slicing of parameters and buffers, with the optimizer state sliced alike.

``user_dir.common.slicing`` builds *new* modules, which is right after training. A method that
prunes *during* training (SRP) must keep the very same ``nn.Parameter`` objects instead: the
optimizer, the data-parallel wrapper and tied weights all hold references to them. So we swap the
``.data`` of each parameter for the kept slice and record what we did, then replay the record on
every optimizer-state tensor of the same shape (Adam's moments), so training goes on in the same run.
"""
from typing import Dict, List, NamedTuple

import torch
import torch.nn as nn


class SliceRecord(NamedTuple):
    param: torch.Tensor
    dim: int
    index: torch.Tensor
    old_size: int


def as_index(keep, device=None) -> torch.Tensor:
    """A LongTensor of kept positions from an index or a bool mask."""
    keep = torch.as_tensor(keep, device=device)
    if keep.dtype == torch.bool:
        keep = keep.nonzero(as_tuple=True)[0]
    return keep.long()


class InplaceSlicer:
    """Slices each (tensor, dim) at most once, so a tensor shared by two modules (tied embeddings)
    is cut once, and keeps the log that ``slice_optimizer_state_`` replays."""

    def __init__(self):
        self.records: List[SliceRecord] = []
        self._done = set()

    def param_(self, param: nn.Parameter, dim: int, keep) -> None:
        key = (id(param), dim)
        if key in self._done:
            return
        self._done.add(key)
        index = as_index(keep, param.device)
        old = param.size(dim)
        if index.numel() == old and bool((index == torch.arange(old, device=index.device)).all()):
            return
        param.data = param.data.index_select(dim, index).contiguous()
        param.grad = None  # a gradient of the old shape must never reach the optimizer
        self.records.append(SliceRecord(param, dim, index, old))

    def buffer_(self, module: nn.Module, name: str, dim: int, keep) -> None:
        buf = getattr(module, name)
        key = (id(buf), dim)
        if key in self._done:
            return
        index = as_index(keep, buf.device)
        new = buf.index_select(dim, index).contiguous()
        setattr(module, name, new)
        self._done.add((id(new), dim))


def slice_optimizer_state_(optimizer: torch.optim.Optimizer, records: List[SliceRecord]) -> int:
    """Slice every per-parameter state tensor shaped like its parameter (e.g. Adam's exp_avg and
    exp_avg_sq) the way the parameter was sliced. Returns the number of tensors sliced."""
    n = 0
    for rec in records:
        state: Dict = optimizer.state.get(rec.param)
        if not state:
            continue
        for key, value in list(state.items()):
            if (
                torch.is_tensor(value)
                and value.dim() == rec.param.dim()
                and value.size(rec.dim) == rec.old_size
            ):
                state[key] = value.index_select(rec.dim, rec.index.to(value.device)).contiguous()
                n += 1
    return n
