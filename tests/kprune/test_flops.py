"""The analytic FLOPs model: hand-computed values, and agreement with fvcore (within 5 %)."""
import pytest
import torch

from tests.kprune.helpers import tiny_model
from user_dir.kprune.flops import (
    FlopsModel, flops_model_for, fvcore_layer_flops, head_flops, model_sizes, neuron_flops,
)


def test_formulas_equal_hand_computed_values():
    # d = 32, d_h = 8, n = 10:  6·32·8·10 + 4·10²·8 + 2·8·10·32 = 15360 + 3200 + 5120
    assert head_flops(10, 32, 8) == 23680
    assert neuron_flops(10, 32) == 1280  # 4·10·32
    # MiniLM (d 384, d_h 32) at n = 27: 6·384·32·27 + 4·27²·32 + 2·32·27·384
    assert head_flops(27, 384, 32) == 1990656 + 93312 + 663552
    assert neuron_flops(27, 384) == 41472
    fm = FlopsModel(n=10, d=32, d_h=8)
    assert fm.total([4, 2, 0], [48, 0, 10]) == 6 * 23680 + 58 * 1280


def test_model_flops_from_its_sizes():
    d, model = tiny_model()
    fm = flops_model_for(model, 10)
    assert (fm.d, fm.d_h) == (32, 8)
    assert fm.total(*model_sizes(model)) == 3 * (4 * 23680 + 48 * 1280)


@pytest.mark.parametrize("n", [7, 16, 40])
def test_analytic_flops_agree_with_fvcore(n):
    d, model = tiny_model()
    sizes = [model_sizes(model)]
    fm = flops_model_for(model, n)
    counted = fvcore_layer_flops(model, n)
    assert abs(counted - fm.total(*sizes[0])) <= 0.05 * fm.total(*sizes[0])
    # non-uniform, with an empty attention and an empty FFN sublayer
    model.prune_structure([torch.tensor([0, 3]), torch.tensor([], dtype=torch.long), torch.arange(4)],
                          [torch.arange(7), torch.arange(48), torch.tensor([], dtype=torch.long)])
    counted = fvcore_layer_flops(model, n)
    analytic = fm.total(*model_sizes(model))
    assert analytic == 6 * fm.head + 55 * fm.neuron
    assert abs(counted - analytic) <= 0.05 * analytic


def test_fvcore_sees_the_attention_matmuls():
    """On the fused path fvcore would miss the n² terms; ours must grow with n² like the model."""
    d, model = tiny_model()
    fm_a, fm_b = flops_model_for(model, 8), flops_model_for(model, 32)
    growth = fvcore_layer_flops(model, 32) - 4 * fvcore_layer_flops(model, 8)
    # linear terms cancel in f(32) - 4 f(8); what is left is the quadratic attention part
    quad = lambda fm: 3 * 4 * 4 * fm.n ** 2 * fm.d_h
    assert growth == pytest.approx(quad(fm_b) - 4 * quad(fm_a))
