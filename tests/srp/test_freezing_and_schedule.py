"""Freezing from step 1 (weights and both Adam moments), optimizer-state slicing, the four schedules,
and the pruning controller's phase boundaries, in-process."""
from argparse import Namespace

import pytest
import torch

from tests.srp.helpers import batch, build, randomize
from user_dir.srp.connectivity import freeze_masks
from user_dir.srp.criterion import SRPCriterion
from user_dir.srp.optimizer import SRPAdam, SRPAdamConfig
from user_dir.srp.phases import PruningController
from user_dir.srp.schedule import Schedule
from user_dir.srp.slicing import slice_selected


def _optimizer(model, weight_decay=0.1, lr=1e-2):
    cfg = SRPAdamConfig(adam_betas="(0.9, 0.98)", weight_decay=weight_decay, lr=[lr])
    return SRPAdam(cfg, [p for p in model.parameters() if p.requires_grad])


def _sample(task, seed=2):
    src, lengths, prev = batch(task, seed=seed)
    return {"net_input": {"src_tokens": src, "src_lengths": lengths, "prev_output_tokens": prev},
            "target": prev.clone(), "ntokens": int(prev.ne(task.target_dictionary.pad()).sum()),
            "nsentences": src.size(0)}


def _select_some(model, seed=0):
    g_ = torch.Generator().manual_seed(seed)
    for g in model.gates():
        sel = torch.rand(g.size, generator=g_) < 0.3
        if g.kind in ("qk", "vo"):
            w = g.size // g.heads
            sel = torch.cat([torch.randperm(w, generator=g_) < 2 for _ in range(g.heads)])
        g.sel.copy_(sel)


def test_frozen_entries_and_moments_do_not_move_from_step_1():
    model, task = build(share_decoder_input_output_embed=True, dropout=0.0)
    randomize(model)
    _select_some(model)
    opt = _optimizer(model)
    masks = freeze_masks(model.gates())
    assert len(masks) > 10
    opt.set_freeze(masks)  # before any step: the optimizer has no state yet
    before = {p: p.detach().clone() for p in masks}
    crit = SRPCriterion(task, False, 0.1)
    for step in range(3):
        opt.zero_grad()
        loss, _, _ = crit(model, _sample(task, seed=step))
        loss.backward()
        opt.step()
        for p, m in masks.items():
            frozen = m == 0
            assert torch.equal(p.detach()[frozen], before[p][frozen]), "a frozen weight moved"
            state = opt.optimizer.state[p]
            assert state["exp_avg"][frozen].abs().max() == 0
            assert state["exp_avg_sq"][frozen].abs().max() == 0
    moved = sum(int((p.detach() != before[p])[m == 1].sum()) for p, m in masks.items())
    assert moved > 0.9 * sum(int((m == 1).sum()) for m in masks.values())


def test_moments_of_later_selection_are_zeroed():
    model, task = build(dropout=0.0)
    opt = _optimizer(model, weight_decay=0.0)
    crit = SRPCriterion(task, False, 0.1)
    loss, _, _ = crit(model, _sample(task))
    loss.backward()
    opt.step()  # moments exist and are non-zero
    _select_some(model)
    masks = freeze_masks(model.gates())
    opt.set_freeze(masks)
    for p, m in masks.items():
        assert opt.optimizer.state[p]["exp_avg"][m == 0].abs().max() == 0


def test_optimizer_state_is_sliced_with_the_model():
    model, task = build(share_decoder_input_output_embed=True, dropout=0.0)
    opt = _optimizer(model)
    crit = SRPCriterion(task, False, 0.1)
    for step in range(2):
        opt.zero_grad()
        crit(model, _sample(task, seed=step))[0].backward()
        opt.step()
    _select_some(model)
    emb = model.decoder.embed_tokens.weight
    keep = (~model.decoder.embedding_c_sel).nonzero()[:, 0]
    expected = opt.optimizer.state[emb]["exp_avg"].index_select(1, keep).clone()
    records = slice_selected(model)
    assert opt.slice_state(records) > 0
    for p in model.parameters():
        for key in ("exp_avg", "exp_avg_sq"):
            assert opt.optimizer.state[p][key].shape == p.shape
    assert torch.equal(opt.optimizer.state[emb]["exp_avg"], expected)
    opt.zero_grad()
    crit(model, _sample(task))[0].backward()
    opt.step()  # training goes on with the smaller model


@pytest.mark.parametrize("kind", ["sa", "sg", "ea", "eg"])
def test_schedules_end_at_exactly_zero(kind):
    sched = Schedule(kind, steps_per_epoch=7, epochs=3)
    values = [sched.value_at_update(k) for k in range(sched.total_updates)]
    assert values[-1] == 0.0  # the last update of the period trains with c = 0
    assert all(v > 0 for v in values[:-1] if kind[0] == "s")
    assert all(a >= b for a, b in zip(values, values[1:]))
    if kind[0] == "e":  # constant within an epoch, zero during the last epoch only
        for e in range(3):
            assert len(set(values[e * 7:(e + 1) * 7])) == 1
        assert values[13] > 0 and values[14] == 0
    if kind == "sa":
        assert values[:3] == pytest.approx([1 - 1 / 21, 1 - 2 / 21, 1 - 3 / 21])
    if kind == "sg":
        assert values[-2] == pytest.approx(1e-5 ** (20 / 21))
    if kind == "eg":
        assert values[0] == pytest.approx(1e-5 ** (1 / 3))


def test_bad_schedule_name():
    with pytest.raises(ValueError, match="--decreasing"):
        Schedule("xx", 3, 2)


class _Task:
    """The slice of the task the controller talks to."""

    def __init__(self, task, steps_per_epoch):
        self.src_dict, self.tgt_dict = task.source_dictionary, task.target_dictionary
        self.model_cfg = None
        self.epoch = 1
        self._spe = steps_per_epoch
        self._task = task

    def updates_per_epoch(self):
        return self._spe

    def scoring_batches(self, model):
        return [_sample(self._task, seed=99)]


@pytest.mark.parametrize("kind", ["sa", "eg"])
def test_controller_shrinks_then_slices_on_the_last_update(kind):
    model, task = build(share_decoder_input_output_embed=True, dropout=0.0)
    spe, period = 3, 2
    cfg = Namespace(srp=True, pruning_stage=0, pruning_period=period, pruning_iter=1, decreasing=kind,
                    warming_up=1, compression_rate=0.5)
    fake = _Task(task, spe)
    ctl = PruningController(cfg, fake)
    opt = _optimizer(model)
    crit = SRPCriterion(task, False, 0.1)
    n_params = sum(p.numel() for p in model.parameters())
    seen = []
    for u in range(spe * (1 + period) + 2):
        fake.epoch = u // spe + 1
        ctl.before_update(model, crit, opt, u)
        sel = [g for g in model.gates() if bool(g.sel.any())]
        seen.append((u, model.gated, float(sel[0].c[sel[0].sel][0]) if sel else None))
        opt.zero_grad()
        crit(model, _sample(task, seed=u))[0].backward()
        opt.step()
        ctl.after_update(model, opt, u)
    warm, pruning, after = seen[:spe], seen[spe:spe * (1 + period)], seen[spe * (1 + period):]
    assert all(not gated and c is None for _, gated, c in warm)
    assert all(gated for _, gated, _ in pruning)
    assert pruning[-1][2] == 0.0 and all(c > 0 for _, _, c in pruning[:-1] if kind[0] == "s")
    assert all(not gated and c is None for _, gated, c in after)  # sliced right after the last one
    assert sum(p.numel() for p in model.parameters()) < 0.75 * n_params
    assert model.srp_progress.tolist() == [1, 0, 0]
    assert not opt.frozen


def _run_controller(model, task, cfg, spe, n_updates, probe=None):
    fake = _Task(task, spe)
    ctl = PruningController(cfg, fake)
    opt = _optimizer(model)
    crit = SRPCriterion(task, False, 0.1)
    for u in range(n_updates):
        fake.epoch = u // spe + 1
        ctl.before_update(model, crit, opt, u)
        if probe:
            probe(u, model)
        opt.zero_grad()
        crit(model, _sample(task, seed=u))[0].backward()
        opt.step()
        ctl.after_update(model, opt, u)
    return opt


def _expected(model, rate, iteration, iterations):
    from user_dir.srp.compression_rate import kept_fraction, parameter_split, target_counts
    from user_dir.srp.shapes import ModelShapes

    original = ModelShapes.from_arch(model.cfg)
    split = parameter_split(original, len(model.encoder.dictionary), len(model.decoder.dictionary), True)
    return original, target_counts(original, kept_fraction(rate, split), iteration, iterations)


def _removed(model, original):
    shapes = model.current_shapes()
    fc = sum(l.ffn for s in (original.encoder, original.decoder) for l in s.layers) - \
        sum(l.ffn for s in (shapes.encoder, shapes.decoder) for l in s.layers)
    emb = original.encoder.embed_dim - shapes.encoder.embed_dim
    head = original.encoder.embed_dim // original.encoder.heads - shapes.encoder.layers[0].self_qk
    return emb, fc, head


def test_controller_iterations_reach_the_target():
    model, task = build(share_decoder_input_output_embed=True, dropout=0.0)
    cfg = Namespace(srp=True, pruning_stage=0, pruning_period=2, pruning_iter=2, decreasing="sa",
                    warming_up=0, compression_rate=0.5)
    seen = {}

    def probe(u, m):
        seen[u] = (_removed(m, _expected(m, 0.5, 1, 2)[0]), int(m.srp_progress[0]))

    _run_controller(model, task, cfg, spe=2, n_updates=5, probe=probe)
    original, first = _expected(model, 0.5, 1, 2)
    _, last = _expected(model, 0.5, 2, 2)
    # iteration 1 shrinks over updates 0-1 and is sliced after update 1; iteration 2 re-scores the
    # smaller model at update 2, shrinks over 2-3, slices after 3
    assert seen[2] == ((first.emb["encoder"], first.fc, first.head["encoder"]), 1)
    assert 0 < first.fc < last.fc
    assert _removed(model, original) == (last.emb["encoder"], last.fc, last.head["encoder"])
    assert model.srp_progress.tolist() == [2, 0, 0]


def test_ablation_without_srp_slices_at_once():
    model, task = build(share_decoder_input_output_embed=True, dropout=0.0)
    cfg = Namespace(srp=False, pruning_stage=0, pruning_period=3, pruning_iter=1, decreasing="sa",
                    warming_up=0, compression_rate=0.5)
    gated = []
    _run_controller(model, task, cfg, spe=2, n_updates=3, probe=lambda u, m: gated.append(m.gated))
    original, counts = _expected(model, 0.5, 1, 1)
    assert _removed(model, original) == (counts.emb["encoder"], counts.fc, counts.head["encoder"])
    assert not any(gated)
    assert model.srp_progress.tolist() == [1, 0, 0]
