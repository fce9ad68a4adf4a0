"""Kwon et al.'s baseline (``fairseq-kprune --method kwon``): the maths of each stage against
hand-computed or independently computed values, and masked == folded-and-sliced."""
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.kprune.helpers import HEAD, tiny_batches, tiny_model
from user_dir.kprune.flops import flops_model_for, model_sizes
from user_dir.kprune.kwon import KwonMasks, KwonSettings, fold_and_slice, masked_logits, prune_kwon
from user_dir.kprune.kwon import teacher_constraint
from user_dir.kprune.kwon.fisher import block_fisher, collect_mask_gradients, diagonal_fisher, example_losses
from user_dir.kprune.kwon.masks import unit_masks_applied
from user_dir.kprune.kwon.rearrange import greedy_rearrange, pruned_loss, rearrange_layers
from user_dir.kprune.kwon.rescale import (
    _input_of, attention_normal_equations, ffn_normal_equations, lsmr_solve, rescale_masks,
)
from user_dir.kprune.kwon.search import search_budget
from user_dir.kprune.sublayers import ATTENTION, first_layer_input, run_sublayer


def labelled(d, count=3, num_classes=3, seed=0, regression=False):
    batches = tiny_batches(d, count, seed=seed)
    g = torch.Generator().manual_seed(100 + seed)
    for b in batches:
        n = b.tokens.size(0)
        b.target = torch.randn(n, generator=g) if regression else torch.randint(num_classes, (n,), generator=g)
    return batches


def _frozen(model):
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ---- stage 1a: Fisher ------------------------------------------------------------------------
def _one_example_grads(model, tokens, target, regression=False):
    """∂ℓ/∂m of one unpadded example, with ordinary shared (units,) masks: an autograd loop."""
    heads = [torch.ones(l.num_heads, requires_grad=True) for l in model.layers]
    neurons = [torch.ones(l.ffn_dim, requires_grad=True) for l in model.layers]
    with unit_masks_applied(model, heads, neurons):
        logits = model(tokens[None], features_only=True, classification_head_name=HEAD)[0]
        if regression:
            loss = (logits.view(-1) - target.view(-1)).pow(2).sum()
        else:
            loss = F.cross_entropy(logits, target.view(1))  # a single example: mean = its loss
        return torch.autograd.grad(loss, heads + neurons)


@pytest.mark.parametrize("regression", [False, True])
def test_fisher_is_the_sum_of_squared_per_example_gradients(regression):
    d, model = tiny_model(seed=4, num_classes=1 if regression else 3)
    _frozen(model)
    batches = labelled(d, 2, regression=regression)
    grads = collect_mask_gradients(model, batches, HEAD, regression)
    L = len(model.layers)
    rows = []
    for b in batches:
        for i in range(b.tokens.size(0)):
            n = int(b.real[i].sum())
            rows.append(_one_example_grads(model, b.tokens[i, :n], b.target[i], regression))
    assert grads.num_samples == len(rows) == 16
    for l in range(L):
        ref_h = torch.stack([r[l] for r in rows])
        ref_n = torch.stack([r[L + l] for r in rows])
        scale_h, scale_n = float(ref_h.abs().max()), float(ref_n.abs().max())
        assert scale_h > 1e-4 and scale_n > 1e-4  # the loss really depends on the masks
        assert torch.allclose(grads.heads[l], ref_h, atol=1e-5 * scale_h, rtol=1e-4)
        assert torch.allclose(grads.neurons[l], ref_n, atol=1e-5 * scale_n, rtol=1e-4)
        fisher_h = (ref_h.double() ** 2).sum(0)
        assert torch.allclose(grads.head_fisher()[l], fisher_h, rtol=1e-4, atol=1e-6 * float(fisher_h.max()))
        block = block_fisher(grads.neurons[l])
        assert torch.allclose(block, sum(torch.outer(r, r) for r in ref_n.double()), rtol=1e-4,
                              atol=1e-6 * float(block.abs().max()))
        assert torch.allclose(block.diagonal(), diagonal_fisher(grads.neurons[l]))


def test_per_batch_fisher_uses_the_gradient_of_each_batch_mean_loss():
    """The original code's variant: one gradient per mini-batch, of its mean loss."""
    d, model = tiny_model(seed=5)
    _frozen(model)
    batches = labelled(d, 2)
    grads = collect_mask_gradients(model, batches, HEAD, regression=False, per_batch=True)
    assert grads.num_samples == 2
    for row, b in enumerate(batches):
        heads = [torch.ones(l.num_heads, requires_grad=True) for l in model.layers]
        neurons = [torch.ones(l.ffn_dim, requires_grad=True) for l in model.layers]
        with unit_masks_applied(model, heads, neurons):
            logits = model(b.tokens, features_only=True, classification_head_name=HEAD)[0]
            ref = torch.autograd.grad(F.cross_entropy(logits, b.target), heads + neurons)
        for l in range(len(model.layers)):
            assert torch.allclose(grads.heads[l][row], ref[l], rtol=1e-4, atol=1e-7)
            assert torch.allclose(grads.neurons[l][row], ref[len(model.layers) + l], rtol=1e-4, atol=1e-7)


def test_example_losses():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    ce = example_losses(logits, torch.tensor([0, 0]), regression=False)
    assert ce.tolist() == pytest.approx([math.log(1 + math.exp(-2)), math.log(1 + math.e)])
    se = example_losses(torch.tensor([[0.5], [2.0]]), torch.tensor([1.0, 0.0]), regression=True)
    assert se.tolist() == pytest.approx([0.25, 4.0])


# ---- stage 1b: search ------------------------------------------------------------------------
def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_search_on_a_hand_made_example():
    neurons = [_t(0.9, 0.8, 0.1), _t(0.7, 0.6, 0.5, 0.4, 0.3)]
    # heads cost 10, neurons 3, budget 25. By hand (Σ best heads + Σ best neurons that fit):
    #   h=0: 8 neurons -> 4.3;  h=1: 5 neurons -> 5 + 3.5 = 8.5;  h=2: 1 neuron -> 8 + 0.9 = 8.9
    #   (3 heads cost 30 > 25: not a candidate)
    r = search_budget([_t(5.0, 0.5), _t(3.0, 0.1)], neurons, 10.0, 3.0, 25.0)
    assert (r.num_heads, r.num_neurons, r.candidates) == (2, 1, 3)
    assert r.importance == pytest.approx(8.9)
    assert r.cost == 23.0
    assert [k.tolist() for k in r.head_keep] == [[True, False], [True, False]]
    assert [k.tolist() for k in r.neuron_keep] == [[True, False, False], [False] * 5]
    # dominant heads: the original's loop would also try 3-4 heads with 0 neurons (over budget)
    r = search_budget([_t(50.0, 30.0), _t(40.0, 20.0)], neurons, 10.0, 3.0, 25.0)
    assert (r.num_heads, r.num_neurons) == (2, 1) and r.cost <= 25.0
    # not even one head fits: neurons only
    r = search_budget([_t(50.0, 30.0), _t(40.0, 20.0)], neurons, 10.0, 3.0, 7.0)
    assert (r.num_heads, r.num_neurons) == (0, 2)
    assert [k.tolist() for k in r.neuron_keep] == [[True, True, False], [False] * 5]


def test_search_is_the_best_feasible_head_count_and_never_over_budget():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        heads = [torch.rand(4, generator=g, dtype=torch.float64) for _ in range(3)]
        neurons = [torch.rand(10, generator=g, dtype=torch.float64) * 0.2 for _ in range(3)]
        hc, nc = 1.0 + float(torch.rand(1, generator=g)) * 9, 1.0
        full = 12 * hc + 30 * nc
        budget = float(torch.rand(1, generator=g)) * full
        r = search_budget(heads, neurons, hc, nc, budget)
        assert r.cost <= budget + 1e-9
        kept_h = torch.cat(r.head_keep)
        kept_n = torch.cat(r.neuron_keep)
        assert int(kept_h.sum()) == r.num_heads and int(kept_n.sum()) == r.num_neurons
        assert r.num_heads * hc + r.num_neurons * nc == pytest.approx(r.cost)
        # brute force over head counts
        hs = torch.cat(heads).sort(descending=True).values
        ns = torch.cat(neurons).sort(descending=True).values
        best = max(float(hs[:h].sum()) + float(ns[:min(30, int((budget - h * hc) // nc))].sum())
                   for h in range(0, 13) if h * hc <= budget)
        assert r.importance == pytest.approx(best)


# ---- stage 2: rearrangement ------------------------------------------------------------------
def test_rearrangement_on_a_hand_made_example():
    # gradients of 3 units over 2 samples: u0 = (1, 1), u1 = (2, 0), u2 = (-2, 0.1)
    grads = torch.tensor([[1.0, 2.0, -2.0], [1.0, 0.0, 0.1]])
    fisher = block_fisher(grads)  # diagonal 2, 4, 4.01: the search keeps u2, prunes {u0, u1}
    keep = torch.tensor([False, False, True])
    assert pruned_loss(keep, fisher) == pytest.approx(10.0)  # |(1,1)+(2,0)|²
    # add u2 to the pruned set; dropping u0 leaves |u1 + u2|² = 0.01 (u1 and u2 cancel)
    new = greedy_rearrange(keep, fisher)
    assert new.tolist() == [True, False, False]
    assert pruned_loss(new, fisher) == pytest.approx(0.01)


def _reference_rearrange(keep, grads):
    """The greedy swap written with explicit gradient vectors, as the original evaluates it."""
    vectors = grads.T.double()  # (units, samples)
    diag = vectors.pow(2).sum(1)
    order = diag.argsort(stable=True).tolist()
    num_pruned = int((~keep).sum())
    pruned = order[:num_pruned]
    for j in order[num_pruned:]:
        pruned.append(j)
        vs = vectors[pruned]
        remaining = (vs.sum(0) - vs).pow(2).sum(1)  # |Σ of the others|² for each candidate removal
        del pruned[int(remaining.argmin())]
    out = torch.ones_like(keep)
    out[pruned] = False
    return out


def test_rearrangement_keeps_counts_never_worsens_and_matches_the_vector_form():
    g = torch.Generator().manual_seed(1)
    changed = 0
    for trial in range(40):
        units = 12
        grads = torch.randn(7, units, generator=g, dtype=torch.float64)
        fisher = block_fisher(grads)
        k = int(torch.randint(0, units + 1, (1,), generator=g))
        keep = torch.zeros(units, dtype=torch.bool)
        keep[fisher.diagonal().argsort(descending=True)[:k]] = True  # as the search leaves it
        new = greedy_rearrange(keep, fisher)
        assert int(new.sum()) == k
        assert pruned_loss(new, fisher) <= pruned_loss(keep, fisher) + 1e-9
        assert new.tolist() == _reference_rearrange(keep, grads).tolist()
        changed += int(not torch.equal(new, keep))
    assert changed > 5  # the swaps do something


def test_rearrange_layers_logs_per_layer():
    g = torch.Generator().manual_seed(2)
    grads = [torch.randn(9, 6, generator=g), torch.randn(9, 6, generator=g)]
    keeps = [torch.tensor([True, True, False, False, True, False]), torch.zeros(6, dtype=torch.bool)]
    new, log = rearrange_layers(keeps, grads, "heads")
    assert [int(k.sum()) for k in new] == [3, 0]
    assert [r.layer for r in log] == [0, 1] and log[1].swapped == 0
    assert all(r.loss_after <= r.loss_before + 1e-9 for r in log)


# ---- stage 3: mask tuning ----------------------------------------------------------------------
def test_lsmr_solve_is_the_least_squares_solution_around_one():
    g = torch.Generator().manual_seed(3)
    A = torch.randn(50, 4, generator=g, dtype=torch.float64)
    b = torch.randn(50, generator=g, dtype=torch.float64)
    x, istop = lsmr_solve(A.T @ A, A.T @ b, damp=0.0)
    assert istop < 3
    assert np.allclose(x, torch.linalg.lstsq(A, b[:, None]).solution.flatten().numpy(), atol=1e-6)
    # damping shrinks the solution towards 1 (δ = x - 1 towards 0)
    x_damped, _ = lsmr_solve(A.T @ A, A.T @ b, damp=100.0)
    assert np.linalg.norm(x_damped - 1) < np.linalg.norm(x - 1)
    # one unknown: r / AᵀA
    x1, istop = lsmr_solve(torch.tensor([[4.0]]), torch.tensor([2.0]), damp=1.0)
    assert x1.tolist() == [0.5] and istop < 3


def _layer_inputs(model, masks, batches, layer):
    """Input of ``layer`` per batch under ``masks``."""
    with torch.no_grad(), masks.applied(model):
        xs = [first_layer_input(model, b.tokens, HEAD)[0] for b in batches]
        for l in range(layer):
            xs = [model.layers[l](x, b.padding_mask if b.padding_mask.any() else None) for x, b in zip(xs, batches)]
    return xs


def _pre_ln_sum(layer, kind, x, batch, masks, model):
    norm = layer.self_attn_layer_norm if kind == ATTENTION else layer.final_layer_norm
    with masks.applied(model):
        return _input_of(norm, lambda: run_sublayer(layer, kind, x, batch.padding_mask))


def test_attention_normal_equations_match_an_explicit_least_squares_problem():
    d, model = tiny_model(seed=6)
    batches = labelled(d, 2)
    teacher = KwonMasks.ones(model)
    student = teacher.clone()
    student.heads[0][1] = 0.0  # layer 0 pruned a head, so layer 1's student input differs
    student.neurons[0][::3] = 0.0
    student.heads[1][2] = 0.0
    layer = model.layers[1]
    xs, xt = _layer_inputs(model, student, batches, 1), _layer_inputs(model, teacher, batches, 1)
    kept = student.head_keep(1).nonzero().flatten()
    G, c, bb = attention_normal_equations(layer, kept, batches, xs, xt, teacher.heads[1])
    # the explicit A (per-head outputs + the constant column) and b = Y_T - bias - R
    cols, targets = [], []
    hd = layer.self_attn.head_dim
    W = layer.self_attn.out_proj.weight.detach().double()
    for bt, x_s, x_t in zip(batches, xs, xt):
        y_t = _pre_ln_sum(layer, ATTENTION, x_t, bt, teacher, model)[bt.real].double()
        ctx = _input_of(layer.self_attn.out_proj,
                        lambda: layer.self_attn(x_s, key_padding_mask=bt.padding_mask))[bt.real].double()
        per_head = [ctx[:, h * hd:(h + 1) * hd] @ W[:, h * hd:(h + 1) * hd].T for h in kept.tolist()]
        cols.append(torch.stack([o.flatten() for o in per_head] + [torch.ones(per_head[0].numel(), dtype=torch.float64)], 1))
        bias = layer.self_attn.out_proj.bias.double()
        targets.append((y_t - bias - x_s[bt.real].double()).flatten())
    A, b = torch.cat(cols).detach(), torch.cat(targets).detach()
    assert torch.allclose(G, A.T @ A, rtol=1e-9, atol=1e-7)
    # the target is computed here through the float32 model (≈1e-7 apart from the float64 sum)
    assert torch.allclose(c, A.T @ b, rtol=1e-6, atol=1e-5)
    assert float(bb) == pytest.approx(float(b @ b), rel=1e-6)
    x, istop = lsmr_solve(G, c, damp=0.0)
    assert np.allclose(x, torch.linalg.lstsq(A, b[:, None]).solution.flatten().numpy(), atol=1e-5)
    # the student's own pre-LN sum error (kept heads at 1) is the quadratic form at m = 1
    direct = sum(float(((_pre_ln_sum(layer, ATTENTION, x_s, bt, student, model)
                         - _pre_ln_sum(layer, ATTENTION, x_t, bt, teacher, model))[bt.real].double() ** 2).sum())
                 for bt, x_s, x_t in zip(batches, xs, xt))
    m = torch.ones(kept.numel(), dtype=torch.float64)
    k = kept.numel()
    assert float(m @ G[:k, :k] @ m - 2 * m @ c[:k] + bb) == pytest.approx(direct, rel=1e-6)


def test_ffn_normal_equations_match_an_explicit_least_squares_problem():
    d, model = tiny_model(seed=7)
    batches = labelled(d, 2)
    layer = model.layers[2]
    kept = torch.arange(48)[torch.arange(48) % 4 != 1]
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(b.tokens.shape + (32,), generator=g) for b in batches]
    xt = [x + 0.1 * torch.randn(x.shape, generator=g) for x in xs]
    for first_token_only in (False, True):
        G, c, bb = ffn_normal_equations(layer, kept, batches, xs, xt, None, first_token_only)
        cols, targets = [], []
        W2 = layer.fc2.weight.detach().double()
        for bt, x_s, x_t in zip(batches, xs, xt):
            rows = (lambda t: t[:, 0]) if first_token_only else (lambda t: t[bt.real])
            h_s = rows(_input_of(layer.fc2, lambda: layer.ffn_block(x_s))).double()
            y_t = rows(_input_of(layer.final_layer_norm, lambda: layer.ffn_block(x_t))).double()
            cols.append(torch.stack([torch.outer(h_s[:, i], W2[:, i]).flatten() for i in kept.tolist()], 1))
            targets.append((y_t - layer.fc2.bias.double() - rows(x_s).double()).flatten())
        A, b = torch.cat(cols).detach(), torch.cat(targets).detach()
        assert torch.allclose(G, A.T @ A, rtol=1e-8, atol=1e-8)
        assert torch.allclose(c, A.T @ b, rtol=1e-6, atol=1e-5)
        assert float(bb) == pytest.approx(float(b @ b), rel=1e-6)


def test_rescale_is_the_identity_when_nothing_is_pruned():
    d, model = tiny_model(seed=8)
    batches = labelled(d, 2)
    ones = KwonMasks.ones(model)
    result = rescale_masks(model, batches, ones, ones, damp=1.0, head_name=HEAD)
    assert result.stopped is None
    assert len(result.fits) == 2 * 3 - 1  # layer 0's heads are never tuned
    for f in result.fits:
        assert f.applied and f.error_before < 1e-8 * max(f.target_energy, 1.0)
    for m in result.masks.heads + result.masks.neurons:
        assert torch.allclose(m, torch.ones_like(m), atol=1e-4)


def _pre_ln_sums_everywhere(model, masks, batches):
    """Per sublayer (2l, 2l+1), per batch: the pre-LayerNorm sums of the masked model."""
    out = [[] for _ in range(2 * len(model.layers))]
    with torch.no_grad():
        for b in batches:
            x = first_layer_input(model, b.tokens, HEAD)[0]
            for s in range(2 * len(model.layers)):
                layer, kind = model.layers[s // 2], ATTENTION if s % 2 == 0 else "ffn"
                out[s].append(_pre_ln_sum(layer, kind, x, b, masks, model))
                with masks.applied(model):
                    x = run_sublayer(layer, kind, x, b.padding_mask)
    return out


def test_rescale_lowers_every_sublayer_error_as_measured_on_the_model():
    d, model = tiny_model(seed=9)
    batches = labelled(d, 3)
    student = KwonMasks.ones(model)
    for l in range(3):
        student.heads[l][l % 4] = 0.0
        student.neurons[l][torch.arange(48) % 3 == l] = 0.0
    teacher = KwonMasks.ones(model)
    result = rescale_masks(model, batches, student, teacher, damp=1.0, head_name=HEAD)
    assert result.stopped is None
    assert [(f.layer, f.kind) for f in result.fits] == [(0, "ffn"), (1, "attention"), (1, "ffn"),
                                                        (2, "attention"), (2, "ffn")]
    for l in range(3):  # only values change, never which units are kept
        assert torch.equal(result.masks.head_keep(l), student.head_keep(l))
        assert torch.equal(result.masks.neuron_keep(l), student.neuron_keep(l))
    assert not torch.equal(result.masks.neurons[1], student.neurons[1])
    # each fit's error after tuning is the tuned model's own pre-LN error at that sublayer
    # (all real tokens; the last FFN: the first token only)
    tuned = _pre_ln_sums_everywhere(model, result.masks, batches)
    ref = _pre_ln_sums_everywhere(model, teacher, batches)
    for f in result.fits:
        s = 2 * f.layer + (0 if f.kind == ATTENTION else 1)
        last = s == 5
        rows = [(t[:, 0] - r[:, 0]) if last else (t - r)[b.real] for t, r, b in zip(tuned[s], ref[s], batches)]
        measured = sum(float(x.double().pow(2).sum()) for x in rows)
        assert f.error_after == pytest.approx(measured, rel=1e-4)
        assert f.error_after < f.error_before


def test_rescale_stops_at_a_value_outside_the_bound():
    d, model = tiny_model(seed=10)
    batches = labelled(d, 2)
    student = KwonMasks.ones(model)
    student.neurons[0][1:] = 0.0  # one neuron left in layer 0 ...
    with torch.no_grad():
        model.layers[0].fc2.weight[:, 0] *= 1e-3  # ... that must be scaled far beyond 10 to matter
    result = rescale_masks(model, batches, student, KwonMasks.ones(model), damp=0.0, head_name=HEAD)
    assert result.stopped and result.stopped.startswith("layer 0 ffn")
    assert len(result.fits) == 1 and not result.fits[0].applied
    for l in range(3):  # nothing applied from there on
        assert torch.equal(result.masks.neurons[l], student.neurons[l])
        assert torch.equal(result.masks.heads[l], student.heads[l])


# ---- the whole method, and masked == sliced ----------------------------------------------------
def test_teacher_constraint_is_the_square_root_schedule():
    assert teacher_constraint(0.5) == pytest.approx(1 - math.sqrt(0.5))
    assert (1 - teacher_constraint(0.75)) == pytest.approx(0.5)


@pytest.mark.parametrize("constraint, rearrange, rescale, full_teacher", [
    (0.3, True, True, False), (0.5, True, True, True), (0.6, False, True, False), (0.9, True, False, False),
])
def test_budget_counts_and_masked_equals_sliced(constraint, rearrange, rescale, full_teacher):
    d, model = tiny_model(seed=11)
    batches = labelled(d, 3)
    fm = flops_model_for(model, 9.4)
    settings = KwonSettings(constraint=constraint, rearrange=rearrange, rescale=rescale,
                            full_teacher=full_teacher, head_name=HEAD)
    result = prune_kwon(model, batches, fm, settings)
    assert result.flops_after <= (1 - constraint) * result.flops_before
    assert set(result.stage_seconds) == {"fisher", "search", "rearrange", "rescale"}
    # rearrangement and tuning keep the search's per-layer counts
    assert result.heads_after == [int(k.sum()) for k in result.search.head_keep]
    assert result.ffn_after == [int(k.sum()) for k in result.search.neuron_keep]
    assert (result.teacher_search is not None) == (rescale and not full_teacher)
    summary = result.summary()
    assert summary["method"] == "kwon" and summary["fisher_samples"] == 24
    masked = [masked_logits(model, result.masks, b, HEAD) for b in batches]
    fold_and_slice(model, result.masks)
    assert model_sizes(model) == (result.heads_after, result.ffn_after)
    assert fm.total(*model_sizes(model)) == result.flops_after
    for b, ref in zip(batches, masked):
        assert torch.allclose(model(b.tokens, classification_head_name=HEAD)[0], ref, atol=1e-5)


def test_masked_equals_sliced_with_tuned_values_and_empty_sublayers():
    d, model = tiny_model(seed=12)
    batch = tiny_batches(d, 1)[0]
    g = torch.Generator().manual_seed(0)
    masks = KwonMasks.ones(model)
    masks.heads[0] = torch.tensor([1.3, 0.0, -0.4, 0.0])
    masks.heads[1] = torch.zeros(4)  # an attention sublayer with no head left
    masks.neurons[0] = torch.randn(48, generator=g) * (torch.arange(48) % 2 == 0)
    masks.neurons[2] = torch.zeros(48)  # an FFN with no neuron left
    masked = masked_logits(model, masks, batch, HEAD)
    fold_and_slice(model, masks)
    assert model_sizes(model) == ([2, 0, 4], [24, 48, 0])
    assert torch.allclose(model(batch.tokens, classification_head_name=HEAD)[0], masked, atol=1e-5)


def test_regression_model_runs_end_to_end():
    d, model = tiny_model(seed=13, num_classes=1)
    batches = labelled(d, 2, regression=True)
    result = prune_kwon(model, batches, flops_model_for(model, 9.4),
                        KwonSettings(constraint=0.5, regression=True, head_name=HEAD))
    assert result.flops_after <= 0.5 * result.flops_before
    assert result.rescale is not None and result.rescale.fits


# ---- command line ------------------------------------------------------------------------------
@pytest.mark.parametrize("method, option", [("kwon", ["--lam-pred", "1"]), ("kwon", ["--sublayerwise-tuning"]),
                                            ("kwon", ["--T", "3"]), ("kprune", ["--kwon-no-rescale"]),
                                            ("kprune", ["--kwon-damp", "0"])])
def test_the_other_methods_options_are_refused(method, option, tmp_path):
    from user_dir.kprune.checkpoint import KpruneInputError
    from user_dir.kprune.cli import get_parser, main

    args = get_parser().parse_args(["nowhere", "--path", "x.pt", "--constraint", "0.5", "--method", method,
                                    "--save-dir", str(tmp_path / "out"), *option])
    with pytest.raises(KpruneInputError, match=rf"^{re.escape(option[0])}: only for --method "):
        main(args)  # refused before anything is loaded
    assert not (tmp_path / "out").exists()


def test_method_defaults_are_filled_in():
    from user_dir.kprune.cli import get_parser, resolve_method_options

    args = get_parser().parse_args(["d", "--path", "x.pt", "--constraint", "0.5", "--method", "kwon"])
    resolve_method_options(args)
    assert (args.kwon_no_rearrange, args.kwon_no_rescale, args.kwon_damp, args.kwon_full_teacher,
            args.kwon_per_batch_fisher) == (False, False, 1.0, False, False)
    assert not hasattr(args, "lam_pred")
    args = get_parser().parse_args(["d", "--path", "x.pt", "--constraint", "0.5"])
    resolve_method_options(args)
    assert (args.method, args.lam_pred, args.lam_rep, args.mu, args.T, args.sublayerwise_tuning, args.ridge) == \
        ("kprune", 1.0, 2.5e-4, None, 2.0, False, 0.0)
