"""Knowledge measurement: the cached, restarted forward gives the scores of a plain full forward."""
import pytest
import torch
import torch.nn.functional as F

from tests.kprune.helpers import HEAD, tiny_batches, tiny_model
from user_dir.kprune.knowledge import measure_knowledge, predictive_loss, teacher_target
from user_dir.kprune.masks import KpruneMasks
from user_dir.kprune.sublayers import first_layer_input, run_from


def test_predictive_loss_is_scaled_kl_to_the_soft_labels():
    g = torch.Generator().manual_seed(0)
    teacher, student = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    p = F.softmax(teacher / 2, -1)
    q = F.softmax(student / 2, -1)
    expected = 4 * (p * (p.log() - q.log())).sum(-1).mean()
    assert torch.allclose(predictive_loss(student, teacher_target(teacher, 2.0, False), 2.0, False), expected)
    assert float(predictive_loss(teacher, teacher_target(teacher, 2.0, False), 2.0, False)) == pytest.approx(0, abs=1e-7)


def test_regression_loss_has_no_broadcasting():
    a, b = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([[1.0], [3.0], [2.0]])
    assert float(predictive_loss(a, teacher_target(b, 2.0, True), 2.0, True)) == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="regression output"):
        predictive_loss(a, b.view(-1), 2.0, True)  # the original's [B,1] vs [B] mistake


def _full_forward_scores(model, masks, batches, targets):
    """Reference: gradients and squared inputs from ordinary full forward passes."""
    n_samples = sum(b.tokens.size(0) for b in batches)
    n_tokens = sum(b.num_tokens for b in batches)
    wrt = masks.heads + masks.neurons
    acc = [torch.zeros_like(m, dtype=torch.float64) for m in wrt]
    sq = {}
    hooks = [model.layers[l].fc2.register_forward_pre_hook(
        lambda mod, a, l=l: sq.__setitem__(l, sq.get(l, 0) + a[0][cur["real"]].double().pow(2).sum(0)))
        for l in range(3)]
    cur = {}
    masks.requires_grad_(True)
    with masks.applied(model):
        for b, t in zip(batches, targets):
            cur["real"] = b.real
            logits = model(b.tokens, classification_head_name=HEAD)[0]
            grads = torch.autograd.grad(predictive_loss(logits, t, 2.0, False), wrt)
            for a, g in zip(acc, grads):
                a += 0.5 * g.double() ** 2
    masks.requires_grad_(False)
    for h in hooks:
        h.remove()
    L = len(masks.heads)
    pred_heads = [(a / n_samples).view(-1, masks.head_dim).mean(1) for a in acc[:L]]
    pred_neurons = [a / n_samples for a in acc[L:]]
    rep_neurons = [sq[l] * model.layers[l].fc2.weight.double().pow(2).mean(0) / n_tokens for l in range(3)]
    return pred_heads, pred_neurons, rep_neurons


def test_scores_at_a_later_step_equal_full_forward_scores():
    d, model = tiny_model(seed=4)
    batches = tiny_batches(d, 3)
    with torch.no_grad():
        firsts = [first_layer_input(model, b.tokens, HEAD) for b in batches]
    targets = [teacher_target(logits, 2.0, False) for _, logits in firsts]
    masks = KpruneMasks(model)
    masks.keep_heads(0, torch.tensor([True, False, True, True]))  # sublayer 0 decided
    with torch.no_grad(), masks.applied(model):  # cached input of sublayer 1 (layer 0's FFN)
        inputs = [model.layers[0].attention_block(x, b.padding_mask)[0] for (x, _), b in zip(firsts, batches)]
    with masks.applied(model):
        k = measure_knowledge(model, masks, batches, inputs, targets, s=1, T=2.0, regression=False,
                              head_name=HEAD)
    pred_heads, pred_neurons, rep_neurons = _full_forward_scores(model, masks, batches, targets)
    assert k.pred_heads[0] is None and k.rep_heads[0] is None  # decided: not measured again
    for l in (1, 2):
        assert torch.allclose(k.pred_heads[l], pred_heads[l], rtol=1e-4, atol=1e-12)
    for l in range(3):
        assert torch.allclose(k.pred_neurons[l], pred_neurons[l], rtol=1e-4, atol=1e-12)
        assert torch.allclose(k.rep_neurons[l], rep_neurons[l], rtol=1e-5)
    assert float(sum(p.sum() for p in k.pred_neurons)) > 0  # pruning a head made the KL non-zero


def test_step_zero_has_no_predictive_knowledge():
    """Teacher and student coincide before anything is pruned: the KL gradient is 0."""
    d, model = tiny_model(seed=5)
    batches = tiny_batches(d, 2)
    with torch.no_grad():
        firsts = [first_layer_input(model, b.tokens, HEAD) for b in batches]
    masks = KpruneMasks(model)
    with masks.applied(model):
        k = measure_knowledge(model, masks, batches, [x for x, _ in firsts],
                              [teacher_target(z, 2.0, False) for _, z in firsts], 0, 2.0, False, HEAD)
    assert max(float(p.max()) for p in k.pred_heads + k.pred_neurons) < 1e-12
    assert min(float(r.min()) for r in k.rep_heads) > 0


def test_skipped_backward_at_step_zero_changes_nothing():
    """The zero shortcut: forcing the backward pass at step 0 gives only rounding noise."""
    d, model = tiny_model(seed=7)
    batches = tiny_batches(d, 2)
    masks = KpruneMasks(model)
    with torch.no_grad():
        firsts = [first_layer_input(model, b.tokens, HEAD) for b in batches]
    masks.requires_grad_(True)
    with masks.applied(model):
        for (x, z), b in zip(firsts, batches):
            logits = run_from(model, 0, x, b.padding_mask, HEAD)
            assert torch.equal(teacher_target(logits, 2.0, False), teacher_target(z, 2.0, False))
            loss = predictive_loss(logits, teacher_target(z, 2.0, False), 2.0, False)
            grads = torch.autograd.grad(loss, masks.heads + masks.neurons)
            assert max(float(g.abs().max()) for g in grads) < 1e-6
    masks.requires_grad_(False)
