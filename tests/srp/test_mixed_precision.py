"""SRP under fairseq's mixed-precision wrappers, in-process, with the real pruning controller.

Plain ``--fp16`` (one flat fp32 master copy), ``--fp16 --fp16-no-flatten-grads`` and ``--bf16`` (one
fp32 master per parameter) and the memory-efficient wrappers (no masters): the selection equals the
fp32 run's on the same weights and batch, frozen entries stay exactly frozen in the model and in the
master copies, their Adam moments stay zero, slicing cuts the masters and their moments with the
model, and training goes on after it with finite losses."""
import copy
import math
from argparse import Namespace

import pytest
import torch
from fairseq import options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.optim.fp16_optimizer import FP16Optimizer, MemoryEfficientFP16Optimizer

from tests.srp.helpers import batch, build, randomize
from user_dir.srp.connectivity import freeze_masks
from user_dir.srp.criterion import SRPCriterion
from user_dir.srp.master_copies import srp_optimizer
from user_dir.srp.optimizer import SRPAdam, SRPAdamConfig
from user_dir.srp.phases import PruningController

PRECISIONS = {  # name: (flags, model dtype, wrapper)
    "fp16-flat": (["--fp16"], torch.float16, FP16Optimizer),
    "fp16-no-flatten-grads": (["--fp16", "--fp16-no-flatten-grads"], torch.float16, FP16Optimizer),
    "bf16": (["--bf16"], torch.bfloat16, FP16Optimizer),
    "memory-efficient-fp16": (["--memory-efficient-fp16"], torch.float16, MemoryEfficientFP16Optimizer),
    "memory-efficient-bf16": (["--memory-efficient-bf16"], torch.bfloat16, MemoryEfficientFP16Optimizer),
}
SPE, PERIOD, UPDATES = 3, 1, 5  # select at update 0, shrink over 0-2, slice after 2, fine-tune 3-4


def _cfg(flags):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        "unused-data", "--task", "srp_translation", "--arch", "srp_tiny", "--optimizer", "srp_adam",
        "--adam-betas", "(0.9, 0.98)", "--lr", "1e-2", "--weight-decay", "0.1", "--criterion", "srp",
        "--fp16-init-scale", "4", "--fp16-scale-window", "1000", "--cpu", *flags])
    return convert_namespace_to_omegaconf(args)


def _sample(task, seed, device="cpu"):
    src, lengths, prev = (t.to(device) for t in batch(task, seed=seed))
    return {"net_input": {"src_tokens": src, "src_lengths": lengths, "prev_output_tokens": prev},
            "target": prev.clone(), "ntokens": int(prev.ne(task.target_dictionary.pad()).sum()),
            "nsentences": src.size(0)}


class _Task:
    def __init__(self, task, device):
        self.src_dict, self.tgt_dict, self.model_cfg, self.epoch, self._task, self.device = \
            task.source_dictionary, task.target_dictionary, None, 1, task, device

    def updates_per_epoch(self):
        return SPE

    def scoring_batches(self, model):
        return [_sample(self._task, seed=99, device=self.device), _sample(self._task, seed=98, device=self.device)]


def _start(dtype, device="cpu"):
    """A model whose weights are exactly representable in ``dtype`` (so the fp32 and the mixed run
    start from the same values), its KD teacher and the controller."""
    model, task = build(share_decoder_input_output_embed=True, dropout=0.0)
    randomize(model)
    model.to(device)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())
    crit = SRPCriterion(task, False, 0.1, prob_kd=0.7, T=10.0)
    model.invalidate_gates()
    crit.set_teacher(copy.deepcopy(model))
    cfg = Namespace(srp=True, pruning_stage=0, pruning_period=PERIOD, pruning_iter=1, decreasing="sa",
                    warming_up=0, compression_rate=0.5)
    fake = _Task(task, device)
    return model, task, crit, fake, PruningController(cfg, fake)


def _update(optimizer, model, crit, sample):
    """One update as fairseq's trainer makes it; False when the fp16 loss scaler overflowed."""
    optimizer.zero_grad()
    loss, sample_size, _ = crit(model, sample)
    optimizer.backward(loss)
    optimizer.multiply_grads(1.0 / sample_size)
    try:
        optimizer.clip_grad_norm(0.0)
    except OverflowError:
        return None
    optimizer.step()
    return float(loss)


def _selection(model):
    return {g.name: g.sel.clone() for g in model.gates()}


def _fp32_selection(dtype, device):
    model, task, crit, _, ctl = _start(dtype, device)
    opt = SRPAdam(SRPAdamConfig(adam_betas="(0.9, 0.98)", weight_decay=0.1, lr=[1e-2]),
                  [p for p in model.parameters() if p.requires_grad])
    ctl.before_update(model, crit, opt, 0)
    return _selection(model)


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_srp_prunes_under_mixed_precision(precision, monkeypatch, device):
    flags, dtype, wrapper = PRECISIONS[precision]
    if precision == "fp16-flat" and device.type == "cpu":
        # the flat master copy lives on torch.cuda.current_device(); on a CPU its index is None,
        # which is what fairseq's copy loops look up for CPU parameters
        monkeypatch.setattr(torch.cuda, "current_device", lambda: None)
    expected = _fp32_selection(dtype, device)
    model, task, crit, fake, ctl = _start(dtype, device)
    model.to(dtype)  # as fairseq's trainer does before it builds the optimizer
    optimizer = wrapper.build_optimizer(_cfg(flags), [p for p in model.parameters() if p.requires_grad])
    view = srp_optimizer(optimizer)
    assert (view.flat is not None) == (precision == "fp16-flat")
    assert (view.wrapper is None) == precision.startswith("memory-efficient")

    n_params = sum(p.numel() for p in model.parameters())
    losses, u, frozen_before = [], 0, None
    for _ in range(3 * UPDATES):
        if u == UPDATES:
            break
        fake.epoch = u // SPE + 1
        ctl.before_update(model, crit, optimizer, u)
        if u == 0:
            selection = _selection(model)
            assert selection.keys() == expected.keys()
            assert all(torch.equal(selection[k], expected[k]) for k in expected), \
                "mixed precision selected other groups than fp32 on the same weights and batch"
            masks = freeze_masks(ctl._selected)
            assert masks
            masters = view.tensors()
            frozen_before = {p: (p.detach().clone(), masters[p].detach().clone()) for p in masks}
        loss = _update(optimizer, model, crit, _sample(task, seed=u, device=device))
        if loss is None:
            continue  # a skipped update, as fairseq's trainer skips it: same update number again
        assert math.isfinite(loss)
        losses.append(loss)
        if u < SPE * PERIOD:  # the pruning phase: frozen entries never move, nor their moments
            masters = view.tensors()
            state = view.inner.optimizer.state
            for p, m in masks.items():
                frozen = m == 0
                weight, master = frozen_before[p]
                assert torch.equal(p.detach()[frozen], weight[frozen]), "a frozen weight moved"
                assert torch.equal(masters[p].detach()[frozen], master[frozen]), "a frozen master moved"
                assert not torch.equal(p.detach()[~frozen], weight[~frozen]), "nothing trained"
            for key in ("exp_avg", "exp_avg_sq"):
                for p, m in masks.items():
                    moments = state[view.masters.get(p, p)][key] if view.flat is None else None
                    if moments is not None:
                        assert moments[m == 0].abs().max() == 0
            if view.flat is not None:
                flat_mask = view.frozen[view.flat]
                for key in ("exp_avg", "exp_avg_sq"):
                    assert state[view.flat][key][flat_mask == 0].abs().max() == 0
        ctl.after_update(model, optimizer, u)
        u += 1
    assert u == UPDATES, f"{precision}: too many fp16 overflows"
    assert len(losses) == UPDATES
    # sliced after the pruning phase; masters, their moments and the model agree on every shape
    assert sum(p.numel() for p in model.parameters()) < 0.75 * n_params
    assert model.srp_progress.tolist() == [1, 0, 0] and not view.frozen
    masters = view.tensors()
    state = view.inner.optimizer.state
    for p in model.parameters():
        assert p.dtype == dtype and masters[p].shape == p.shape
        assert masters[p].dtype == (dtype if view.wrapper is None else torch.float32)
        if view.flat is None:
            assert state[view.masters.get(p, p)]["exp_avg"].shape == p.shape
    if view.flat is not None:
        assert view.flat.numel() == sum(p.numel() for p in model.parameters())
        assert state[view.flat]["exp_avg"].shape == view.flat.shape
        # the model is exactly its master copy rounded (the copy-back after the last step)
        assert all(torch.equal(p.detach(), masters[p].to(dtype)) for p in model.parameters())

