"""The phases of an SRP run, driven from the task's per-update hooks.

warm-up (``--warming-up`` epochs) -> for each of ``--pruning-iter`` iterations: score, select, freeze,
shrink the selected ``c`` over its share of ``--pruning-period`` epochs, slice -> fine-tuning (the rest
of the run). Without ``--srp`` every iteration scores, selects and slices at once (the ablation).

Where the run stands lives in the model's ``srp_progress`` buffer ([iterations done, iteration in
progress, update it started at]) next to the ``*_sel`` masks and ``c`` values, so a run resumed from
``checkpoint_last.pt`` continues the same schedule with the same selection: the c values are a closed
form of the update number (``schedule.py``) and the freeze masks are recomputed from ``*_sel``.
"""
import logging

import torch

from .compression_rate import kept_fraction, parameter_split, target_counts
from .connectivity import STAGE_KINDS, freeze_masks
from .master_copies import fp32_weights, srp_optimizer
from .schedule import Schedule
from .selection import all_reduce_scores, broadcast_selection, score_gates, select
from .shapes import ModelShapes
from .slicing import slice_selected

logger = logging.getLogger(__name__)


class PruningController:
    def __init__(self, cfg, task):
        self.cfg = cfg
        self.task = task
        self.kinds = STAGE_KINDS[cfg.pruning_stage]
        self._last_update = None
        self._optimizer_synced = False
        self._selected = []  # gates with a selection, for the per-update c assignment
        self._value = None
        self._view = self._view_of = None

    def _optimizer(self, optimizer):
        """srp_adam seen from the model (``master_copies``), built once per fairseq optimizer."""
        if self._view_of is not optimizer:
            self._view, self._view_of = srp_optimizer(optimizer), optimizer
        return self._view

    # ---- layout --------------------------------------------------------------------------------
    def period_epochs(self, iteration: int) -> int:
        p, n = self.cfg.pruning_period, self.cfg.pruning_iter
        return p * (iteration + 1) // n - p * iteration // n

    def schedule(self, iteration: int) -> Schedule:
        return Schedule(str(self.cfg.decreasing), self.task.updates_per_epoch(), self.period_epochs(iteration))

    # ---- hooks ---------------------------------------------------------------------------------
    def before_update(self, model, criterion, optimizer, update_num: int) -> None:
        if update_num == self._last_update:  # further micro-batches of the same update (--update-freq)
            return
        self._last_update = update_num
        opt = self._optimizer(optimizer)
        progress = model.srp_progress
        done, active, start = (int(v) for v in progress.tolist())
        if not self._optimizer_synced:  # first update of this process: maybe a resumed run
            self._optimizer_synced = True
            if active:
                self._freeze(model, opt)
                model.set_gating(True)
        if done >= self.cfg.pruning_iter:
            if model.gated:
                model.set_gating(False)
            return
        if self.task.epoch <= self.cfg.warming_up:
            return
        if not active:
            if not self.cfg.srp:
                for it in range(done, self.cfg.pruning_iter):
                    self._select(model, criterion, it, opt)
                    self._slice(model, opt)
                    progress[0] = it + 1
                return
            self._select(model, criterion, done, opt)
            progress[1], progress[2] = 1, update_num
            start = update_num
            self._freeze(model, opt)
            model.set_gating(True)
        value = self.schedule(done).value_at_update(update_num - start)
        self._set_c(model, value)

    def after_update(self, model, optimizer, update_num: int) -> None:
        progress = model.srp_progress
        done, active, start = (int(v) for v in progress.tolist())
        if not active:
            return
        sched = self.schedule(done)
        if update_num - start + 1 < sched.total_updates:
            return
        self._set_c(model, 0.0)
        opt = self._optimizer(optimizer)
        self._slice(model, opt)
        progress[0], progress[1], progress[2] = done + 1, 0, 0
        model.set_gating(False)

    # ---- steps ---------------------------------------------------------------------------------
    def _select(self, model, criterion, iteration: int, opt=None) -> None:
        gates = [g for g in model.gates() if g.kind in self.kinds]
        batches = self.task.scoring_batches(model)
        # scores are sums over thousands of tokens: fp16's range and bf16's 8-bit mantissa would
        # decide the ranking by rounding, so scoring (once per iteration) runs on the fp32 values
        with opt.fp32_weights(model) if opt is not None else fp32_weights(model):
            scores = score_gates(model, criterion, batches, gates)
        all_reduce_scores(scores)
        original = ModelShapes.from_arch(model.cfg)
        split = parameter_split(original, len(self.task.src_dict), len(self.task.tgt_dict),
                                bool(model.cfg.share_decoder_input_output_embed))
        x = kept_fraction(self.cfg.compression_rate, split)
        counts = target_counts(original, x, iteration + 1, self.cfg.pruning_iter)
        chosen = select(gates, scores, self.kinds, counts, original)
        broadcast_selection(model.gates())
        logger.info(f"SRP iteration {iteration + 1}/{self.cfg.pruning_iter} (stage {self.cfg.pruning_stage}): "
                    f"kept fraction per group type x={x:.4f}; selected {chosen} "
                    f"(scored on {len(batches)} batch(es))")

    def _freeze(self, model, opt) -> None:
        self._selected = [g for g in model.gates() if bool(g.sel.any())]
        self._value = None
        opt.set_freeze(freeze_masks(self._selected))

    def _set_c(self, model, value: float) -> None:
        if value == self._value:
            return
        self._value = value
        if not self._selected:
            self._selected = [g for g in model.gates() if bool(g.sel.any())]
        with torch.no_grad():
            for g in self._selected:
                g.c.fill_(1.0).masked_fill_(g.sel, value)

    def _slice(self, model, opt) -> None:
        before = sum(p.numel() for p in model.parameters())
        records = slice_selected(model, self.task.model_cfg)
        opt.slice_state(records)
        opt.set_freeze({})
        self._selected = []
        self._value = None
        after = sum(p.numel() for p in model.parameters())
        logger.info(f"SRP: sliced the selected groups: {before:,} -> {after:,} parameters")
