"""KPMS: selection under the budget, and the achieved FLOPs of whole runs never exceed it."""
import pytest
import torch

from tests.kprune.helpers import HEAD, tiny_batches, tiny_model
from user_dir.kprune.flops import flops_model_for, model_sizes
from user_dir.kprune.prune import KpruneSettings, apply_pruning, kprune
from user_dir.kprune.search import importance, select_within_budget


def test_selection_keeps_the_best_units_that_fit():
    scores = torch.tensor([0.5, 3.0, 1.0, 2.0])
    flops = torch.tensor([1.0, 1.0, 1.0, 1.0])
    assert select_within_budget(scores, flops, 2.5).tolist() == [False, True, False, True]
    # strict: a selection costing exactly the budget does not fit
    assert select_within_budget(scores, flops, 2.0).tolist() == [False, True, False, False]
    assert select_within_budget(scores, flops, 0.5).tolist() == [False] * 4
    # the threshold is on the sorted order: a cheap unit below it is not picked to fill the gap
    flops = torch.tensor([0.1, 1.0, 5.0, 1.0])
    assert select_within_budget(scores, flops, 2.5).tolist() == [False, True, False, True]


def test_selection_is_maximal_in_sorted_order():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        scores = torch.rand(30, generator=g)
        flops = torch.rand(30, generator=g) + 0.1
        budget = float(torch.rand(1, generator=g)) * float(flops.sum())
        keep = select_within_budget(scores, flops, budget)
        assert float(flops[keep].sum()) < budget or not keep.any()
        dropped = ~keep
        if dropped.any():
            best_dropped = scores[dropped].max()
            assert (scores[keep] >= best_dropped).all()
            # taking the best dropped unit as well would break the budget
            assert float(flops[keep].sum() + flops[dropped][scores[dropped].argmax()]) >= budget


def test_importance_formula():
    k_pred, k_rep = torch.tensor([2.0]), torch.tensor([400.0])
    assert float(importance(k_pred, k_rep, 1.0, 2.5e-4, 10.0)) == pytest.approx((2.0 + 0.1) / 10)
    assert float(importance(k_pred, k_rep, 1.0, 2.5e-4, 10.0, mu=64)) == pytest.approx(64 * 2.1 / 10)


@pytest.mark.parametrize("constraint, tuning", [(0.1, False), (0.4, True), (0.5, False), (0.8, False),
                                                (0.95, True)])
def test_achieved_flops_never_exceed_the_budget(constraint, tuning):
    d, model = tiny_model(seed=3)
    fm = flops_model_for(model, 9.4)
    result = kprune(model, tiny_batches(d, 3), fm,
                    KpruneSettings(constraint=constraint, sublayerwise_tuning=tuning, head_name=HEAD))
    assert result.flops_before == fm.total(*model_sizes(model))
    assert result.flops_after <= (1 - constraint) * result.flops_before
    apply_pruning(model, result.masks)
    assert fm.total(*model_sizes(model)) == result.flops_after
    # the per-step log adds up
    assert sum(s.kept_flops for s in result.steps) == pytest.approx(result.flops_after)
    assert [s.kind for s in result.steps] == ["attention", "ffn"] * 3


def test_constraint_outside_the_open_interval_is_refused():
    for bad in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(ValueError, match=r"constraint must be in \(0, 1\)"):
            KpruneSettings(constraint=bad)


def test_regression_heads_are_supported():
    d, model = tiny_model(seed=6, num_classes=1)
    fm = flops_model_for(model, 9.4)
    result = kprune(model, tiny_batches(d, 2), fm,
                    KpruneSettings(constraint=0.5, regression=True, sublayerwise_tuning=True, head_name=HEAD))
    assert result.flops_after <= 0.5 * result.flops_before
    assert any(s.pruned for s in result.steps)
