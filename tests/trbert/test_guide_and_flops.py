"""The guided (expert) rollout and the analytic FLOPs."""
from types import SimpleNamespace

import torch

from tests.trbert.helpers import random_batch, tiny_dictionary, tiny_trbert
from user_dir.trbert.flops import layer_macs, pass_macs
from user_dir.trbert.rollouts import ReductionControl, guide_actions


def test_guide_picks_top_k_residual_score_tokens_by_hand():
    probs = torch.tensor([[1.0, 0.9, 0.8, 0.2, 0.4, 0.6, 0.0]])
    active = torch.tensor([[False, True, True, True, True, True, False]])
    scores = torch.tensor([[5.0, 0.1, 0.5, 0.9, 0.3, 0.7, 9.0]])
    # K = round(0.9 + 0.8 + 0.2 + 0.4 + 0.6) = 3: the three best-scored active tokens 3, 5, 2
    keep = guide_actions(probs, active, scores)
    assert keep[0].nonzero().flatten().tolist() == [2, 3, 5]


def test_guided_rollouts_in_the_model_follow_the_expert():
    d = tiny_dictionary()
    model = tiny_trbert(d, seed=7).train()
    tokens = random_batch(d, [30, 18, 26, 12], seed=8)
    scores = torch.rand(4, 30, 2).masked_fill(tokens.eq(d.pad()).unsqueeze(-1), 0)
    control = ReductionControl("sample", guide_rows=torch.tensor([True, False, True, False]),
                               guide_scores=scores)
    model(tokens, classification_head_name="sentence_classification_head", reduction=control)
    for w, point in enumerate(control.points):
        expert = guide_actions(torch.sigmoid(point.logits), point.active, scores[..., w].gather(1, point.positions))
        for row in (0, 2):
            assert torch.equal(point.keep[row] & point.active[row], expert[row])
            # and by hand: the kept active positions are the top-K scores among the active ones
            act = point.active[row].nonzero().flatten()
            k = int(torch.round(torch.sigmoid(point.logits[row, act]).sum()))
            s = scores[row, point.positions[row, act], w]
            top = set(point.positions[row, act[s.argsort(descending=True)[:k]]].tolist())
            kept = set(point.positions[row, (point.keep[row] & point.active[row]).nonzero().flatten()].tolist())
            assert kept == top
        assert point.keep[:, 0].all()


def test_layer_cost_is_the_spec_formula():
    d, L = 768, 512
    layer = SimpleNamespace(num_heads=12, self_attn=SimpleNamespace(head_dim=64), embed_dim=d, ffn_dim=3072)
    assert layer_macs(torch.tensor([float(L)]), layer).item() == 12 * L * d * d + 2 * L * L * d


def test_pass_cost_by_hand():
    d = tiny_dictionary()
    model = tiny_trbert(d).eval()  # 3 layers, d = 32, 4 heads of 8, FFN 48, policies of 32
    lengths = torch.tensor([10])
    control = ReductionControl()
    control.lengths = lengths
    control.points = [SimpleNamespace(layer=1, entering=torch.tensor([10]), kept=torch.tensor([6])),
                      SimpleNamespace(layer=2, entering=torch.tensor([6]), kept=torch.tensor([3]))]
    reduced, full = pass_macs(model.layers, model.sentence_encoder.policies, control)
    layer = lambda n: n * (4 * 32 * 32 + 2 * 32 * 48) + 2 * n * n * 32  # noqa: E731
    policy = lambda n: n * (32 * 32 + 32)  # noqa: E731
    assert full.item() == 3 * layer(10)
    assert reduced.item() == layer(10) + policy(10) + layer(6) + policy(6) + layer(3)
    assert reduced.item() == 162368
