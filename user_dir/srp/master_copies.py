"""Where srp_adam's updates land: the model's own parameters or fairseq's fp32 master copies.

In fp32, under ``--amp`` and under ``--memory-efficient-fp16/-bf16`` srp_adam updates the model's
parameters themselves. Under plain ``--fp16``/``--bf16`` fairseq's ``FP16Optimizer`` hands it fp32
*master copies* instead and copies them back into the half-precision model after every step: one
copy per parameter (``--bf16``, ``--fp16-no-flatten-grads``) or one flat tensor in which every
parameter is a segment, in parameter order (``--fp16``). SRP decides freezing and slicing on the
model's parameters; ``SRPOptimizerView`` carries both over to the tensors the optimizer updates:

- freezing masks the master copy's gradient and Adam moments, so a frozen entry keeps its master
  value, and the model, overwritten from the master after each step, keeps its value exactly;
- slicing cuts the master copy, its gradient buffer and its Adam moments like the model parameter,
  so the next copy-back and the next step see matching shapes and training goes on in the same run;
- ``fp32_weights`` gives scoring the master copies' fp32 values (see ``selection.score_in_fp32``).
"""
from contextlib import contextmanager
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from user_dir.srp.param_slicing import SliceRecord


def _unwrap(optimizer):
    """The fairseq wrappers around srp_adam, outermost first, and srp_adam itself."""
    from .optimizer import SRPAdam

    chain = []
    inner = optimizer
    while not isinstance(inner, SRPAdam):
        nxt = getattr(inner, "wrapped_optimizer", None) or getattr(inner, "fp32_optimizer", None)
        if nxt is None:
            raise ValueError("SRP pruning needs --optimizer srp_adam (it freezes the selected weights "
                             "and their Adam moments, and slices its state); got "
                             f"{type(inner).__name__}")
        chain.append(inner)
        inner = nxt
    return chain, inner


def _master_wrapper(chain):
    """The wrapper that keeps fp32 master copies (fairseq's FP16Optimizer), if any."""
    for w in chain:
        if hasattr(w, "fp16_params") and hasattr(w, "fp32_params"):
            return w
    return None


class SRPOptimizerView:
    """srp_adam seen from the model's parameters, whatever fairseq wrapper sits around it."""

    def __init__(self, optimizer):
        chain, self.inner = _unwrap(optimizer)
        self.wrapper = _master_wrapper(chain)
        self.flat: Optional[nn.Parameter] = None
        self.masters: Dict[nn.Parameter, nn.Parameter] = {}
        if self.wrapper is None:
            return
        params = list(self.wrapper.fp16_params)
        masters = self.wrapper.fp32_params
        if torch.is_tensor(masters) or isinstance(masters, dict):
            flats = list(masters.values()) if isinstance(masters, dict) else [masters]
            if len(flats) != 1:
                raise ValueError("SRP does not support flat fp16 master copies split over several "
                                 "devices (pipeline parallelism); use --fp16-no-flatten-grads")
            self.flat = flats[0]
            self.params = params
        else:
            self.masters = dict(zip(params, masters))

    @property
    def frozen(self):
        return self.inner.frozen

    # ---- freezing ------------------------------------------------------------------------------
    def set_freeze(self, masks: Dict[nn.Parameter, torch.Tensor]) -> None:
        """``masks[p]`` (1 = trains, 0 = frozen) on model parameters; {} unfreezes."""
        if self.wrapper is None:
            self.inner.set_freeze(masks)
        elif self.flat is None:
            self.inner.set_freeze({self.masters[p]: m.float() for p, m in masks.items()})
        elif not masks:
            self.inner.set_freeze({})
        else:
            flat_mask = torch.ones(self.flat.numel(), device=self.flat.device)
            offset = 0
            for p in self.params:
                n = p.numel()
                if p in masks:
                    flat_mask[offset:offset + n].copy_(masks[p].reshape(-1))
                offset += n
            self.inner.set_freeze({self.flat: flat_mask})

    # ---- slicing -------------------------------------------------------------------------------
    def slice_state(self, records: List[SliceRecord]) -> int:
        """Cut the optimizer's tensors as ``records`` cut the model's parameters (already done)."""
        if self.wrapper is None:
            return self.inner.slice_state(records)
        if self.flat is None:
            return self._slice_masters(records)
        return self._slice_flat(records)

    @torch.no_grad()
    def _slice_masters(self, records: List[SliceRecord]) -> int:
        mapped = []
        for rec in records:
            master = self.masters[rec.param]
            index = rec.index.to(master.device)
            master.data = master.data.index_select(rec.dim, index).contiguous()
            master.grad = None  # FP16Optimizer allocates it again from the next fp16 gradient
            mapped.append(SliceRecord(master, rec.dim, index, rec.old_size))
        return self.inner.slice_state(mapped)

    @torch.no_grad()
    def _slice_flat(self, records: List[SliceRecord]) -> int:
        by_param: Dict[nn.Parameter, List[SliceRecord]] = {}
        for rec in records:
            by_param.setdefault(rec.param, []).append(rec)

        def cut(flat: torch.Tensor) -> torch.Tensor:
            pieces, offset = [], 0
            for p in self.params:
                recs = by_param.get(p, [])
                shape = list(p.shape)  # already sliced: undo the records to find the old segment
                for rec in reversed(recs):
                    shape[rec.dim] = rec.old_size
                n = int(torch.Size(shape).numel())
                piece = flat[offset:offset + n].view(shape)
                for rec in recs:
                    piece = piece.index_select(rec.dim, rec.index.to(flat.device))
                pieces.append(piece.reshape(-1))
                offset += n
            if offset != flat.numel():
                raise RuntimeError(f"SRP: the flat fp32 master copy has {flat.numel()} entries, the "
                                   f"model's parameters had {offset}")
            return torch.cat(pieces).contiguous()

        old = self.flat.numel()
        self.flat.data = cut(self.flat.data)
        self.flat.grad = self.flat.data.new_zeros(self.flat.numel())  # FP16Optimizer copies into it
        state = self.inner.optimizer.state.get(self.flat) or {}
        n = 0
        for key, value in list(state.items()):
            if torch.is_tensor(value) and value.dim() == 1 and value.numel() == old:
                state[key] = cut(value)
                n += 1
        return n

    # ---- what the optimizer holds -------------------------------------------------------------
    def tensors(self) -> Dict[nn.Parameter, torch.Tensor]:
        """Per model parameter, the tensor the optimizer updates for it (its segment of the flat
        master copy as a view, its own master copy, or the parameter itself)."""
        if self.wrapper is None:
            return {p: p.data for group in self.inner.param_groups for p in group["params"]}
        if self.flat is None:
            return {p: m.data for p, m in self.masters.items()}
        views, offset = {}, 0
        for p in self.params:
            views[p] = self.flat.data[offset:offset + p.numel()].view_as(p)
            offset += p.numel()
        return views

    def fp32_weights(self, model: nn.Module):
        """``fp32_weights`` with the values of the fp32 master copies, where there are any."""
        return fp32_weights(model, self.tensors() if self.wrapper is not None else None)


@contextmanager
def fp32_weights(model: nn.Module, masters: Optional[Dict[nn.Parameter, torch.Tensor]] = None):
    """``model`` in fp32 for the duration, its parameters holding ``masters[p]`` where given (else
    their own values); afterwards its own dtype and exactly its own values again."""
    dtype = next(model.parameters()).dtype
    if dtype == torch.float32:
        yield model
        return
    saved = {p: p.data for p in model.parameters()}
    model.float()
    try:
        with torch.no_grad():
            for p, master in (masters or {}).items():
                p.data.copy_(master)
        yield model
    finally:
        model.to(dtype)  # the buffers (connectivity c)
        for p, data in saved.items():
            p.data = data


def srp_optimizer(optimizer) -> SRPOptimizerView:
    return SRPOptimizerView(optimizer)

