"""KPWT: the least-squares refit lowers the sublayer's reconstruction error when units are pruned,
and gives back the teacher exactly when nothing is pruned."""
import pytest
import torch

from tests.kprune.helpers import tiny_batches, tiny_model
from user_dir.kprune.masks import KpruneMasks
from user_dir.kprune.sublayers import ATTENTION, FFN
from user_dir.kprune.teacher import Teacher, sublayer_norm
from user_dir.kprune.weight_tuning import output_projection, tune_sublayer

HEAD = "sentence_classification_head"


def _pre_ln_sums(layer, kind, batches, inputs):
    """The sublayer's pre-LayerNorm sums on real tokens, recomputed independently of KPWT."""
    seen, out = {}, []
    h = sublayer_norm(layer, kind).register_forward_pre_hook(lambda m, a: seen.__setitem__("s", a[0]))
    with torch.no_grad():
        for b, x in zip(batches, inputs):
            if kind == ATTENTION:
                layer.attention_block(x, b.padding_mask)
            else:
                layer.ffn_block(x)
            out.append(seen["s"][b.real])
    h.remove()
    return out


def _error(sums, teacher_sums):
    return sum(float((a.double() - b.double()).pow(2).sum()) for a, b in zip(sums, teacher_sums))


def _setup(kind):
    d, model = tiny_model(seed=2)
    batches = tiny_batches(d, 5)
    teacher = Teacher(model, batches, T=2.0, regression=False, head_name=HEAD, with_sums=True)
    inputs = teacher.first_inputs
    sums = teacher.sublayer_sums(0)
    if kind == FFN:
        with torch.no_grad():  # both streams advance through the (unpruned) attention sublayer
            inputs = [model.layers[0].attention_block(x, b.padding_mask)[0] for x, b in zip(inputs, batches)]
        sums = teacher.sublayer_sums(1)
    return model, batches, inputs, sums


@pytest.mark.parametrize("kind", [ATTENTION, FFN])
def test_refit_reproduces_the_teacher_when_nothing_is_pruned(kind):
    model, batches, inputs, teacher_sums = _setup(kind)
    layer = model.layers[0]
    proj = output_projection(layer, kind)
    original = proj.weight.detach().clone()
    with torch.no_grad():  # start from wrong weights, so the refit has something to do
        proj.weight.add_(0.3 * torch.randn_like(proj.weight))
    masks = KpruneMasks(model)
    with masks.applied(model):
        keep = (masks.heads[0] if kind == ATTENTION else masks.neurons[0]) > 0
        result = tune_sublayer(layer, kind, keep, batches, inputs, teacher_sums)
        after = _pre_ln_sums(layer, kind, batches, inputs)
    assert result.error_before > 1.0
    assert result.error_after < 1e-6 * result.target_energy
    assert torch.allclose(proj.weight, original, atol=1e-4)
    for a, b in zip(after, teacher_sums):
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("kind", [ATTENTION, FFN])
def test_refit_lowers_the_error_of_a_pruned_sublayer(kind):
    model, batches, inputs, teacher_sums = _setup(kind)
    layer = model.layers[0]
    masks = KpruneMasks(model)
    if kind == ATTENTION:
        masks.keep_heads(0, torch.tensor([True, False, True, False]))
        keep = masks.heads[0] > 0
    else:
        masks.keep_neurons(0, torch.arange(48) % 4 == 0)
        keep = masks.neurons[0] > 0
    with masks.applied(model):
        before = _error(_pre_ln_sums(layer, kind, batches, inputs), teacher_sums)
        result = tune_sublayer(layer, kind, keep, batches, inputs, teacher_sums)
        after = _error(_pre_ln_sums(layer, kind, batches, inputs), teacher_sums)
    assert before > 0
    assert after < 0.9 * before
    # the closed-form errors KPWT reports are the ones measured on the model
    assert result.error_before == pytest.approx(before, rel=1e-3)
    assert result.error_after == pytest.approx(after, rel=1e-3)


def test_ridge_shrinks_towards_zero_and_bias_is_kept():
    model, batches, inputs, teacher_sums = _setup(ATTENTION)
    layer = model.layers[0]
    masks = KpruneMasks(model)
    masks.keep_heads(0, torch.tensor([True, True, False, False]))
    bias = layer.self_attn.out_proj.bias.detach().clone()
    keep = masks.heads[0] > 0
    norms = []
    for ridge in (0.0, 10.0):
        with masks.applied(model):
            tune_sublayer(layer, ATTENTION, keep, batches, inputs, teacher_sums, ridge=ridge)
        norms.append(float(layer.self_attn.out_proj.weight[:, keep].norm()))
    assert norms[1] < norms[0]
    assert torch.equal(layer.self_attn.out_proj.bias, bias)
