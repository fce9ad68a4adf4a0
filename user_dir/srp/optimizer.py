"""Optimizer ``srp_adam``: fairseq's Adam (decoupled weight decay) that can hold weights frozen.

During the pruning phase every weight entry attached to a selected group is frozen: its gradient is
zeroed before each step, its two Adam moments are zeroed when the selection is made (they then stay
zero, being running averages of zero gradients), and the decoupled weight decay skips it. So a frozen
entry does not move from the very first step (the original let one ordinary update through at step 1,
before its optimizer state existed). The freeze masks come precomputed from the model's selection
(``connectivity.freeze_masks``); a step costs one multiply per masked tensor, no loop over groups.
On physical pruning the moments are sliced like their parameters (``slice_state``), so training goes on
in the same run. The connectivity vectors are buffers, never in the optimizer.

Under fairseq's ``--fp16``/``--bf16`` wrapper the tensors this optimizer updates are fp32 master copies
(one per parameter, or one flat tensor); ``master_copies.SRPOptimizerView`` translates the model's
masks and slices onto them, so this class works on whatever tensors it was given.
"""
import logging
from dataclasses import dataclass
from typing import Dict, List

import torch
from fairseq.optim import FairseqOptimizer, register_optimizer
from fairseq.optim.adam import Adam, FairseqAdamConfig

from user_dir.srp.param_slicing import SliceRecord, slice_optimizer_state_

logger = logging.getLogger(__name__)

_MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


class MaskedAdam(Adam):
    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.frozen: Dict[torch.nn.Parameter, torch.Tensor] = {}

    @torch.no_grad()
    def set_freeze(self, masks: Dict[torch.nn.Parameter, torch.Tensor]) -> None:
        """``masks[p]`` is 1 where ``p`` trains and 0 where it is frozen; an empty dict unfreezes."""
        self.frozen = dict(masks)
        for p, mask in self.frozen.items():
            state = self.state.get(p)
            for key in _MOMENTS:
                if state and key in state:
                    state[key].mul_(mask)

    @torch.no_grad()
    def step(self, closure=None):
        if not self.frozen:
            return super().step(closure)
        decays = []
        for group in self.param_groups:
            wd, lr = group["weight_decay"], group["lr"]
            decays.append(wd)
            for p in group["params"]:
                if p.grad is None:
                    continue
                mask = self.frozen.get(p)
                if mask is not None:
                    p.grad.mul_(mask)
                if wd != 0:  # decoupled decay applied here, so that frozen entries are spared
                    if mask is None:
                        p.data.add_(p.data, alpha=-wd * lr)
                    else:
                        p.data.addcmul_(p.data, mask, value=-wd * lr)
            group["weight_decay"] = 0.0
        try:
            return super().step(closure)
        finally:
            for group, wd in zip(self.param_groups, decays):
                group["weight_decay"] = wd


@dataclass
class SRPAdamConfig(FairseqAdamConfig):
    pass


@register_optimizer("srp_adam", dataclass=SRPAdamConfig)
class SRPAdam(FairseqOptimizer):
    def __init__(self, cfg: SRPAdamConfig, params):
        super().__init__(cfg)
        if getattr(cfg, "fp16_adam_stats", False):
            raise ValueError("--fp16-adam-stats is not supported by --optimizer srp_adam")
        # always the plain (non-fused) Adam: freezing needs to act between gradient and update
        self._optimizer = MaskedAdam(params, **self.optimizer_config)

    @property
    def optimizer_config(self):
        from fairseq.optim.adam import FairseqAdam

        return FairseqAdam.optimizer_config.fget(self)

    @property
    def supports_flat_params(self):
        return True  # plain --fp16: master_copies lays the per-parameter masks out on the flat copy

    def set_freeze(self, masks) -> None:
        self._optimizer.set_freeze(masks)

    @property
    def frozen(self):
        return self._optimizer.frozen

    def slice_state(self, records: List[SliceRecord]) -> int:
        return slice_optimizer_state_(self._optimizer, records)
