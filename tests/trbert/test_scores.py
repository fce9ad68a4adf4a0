"""Residual-strategy scores: the gradient formula, and storage keyed by the fairseq sample id."""
import pytest
import torch

from tests.trbert.helpers import HEAD, build, random_batch, tiny_dictionary
from user_dir.trbert.residual_scores import ScoreTable, compute_scores


def _reference_scores(model, tokens, targets, reduce_layers, score_layer):
    """Independent route: forward hooks on the stock forward, ``retain_grad`` on h_S."""
    states = {}

    def grab(idx):
        def hook(module, args):
            x = args[0]
            if idx == score_layer:
                x.retain_grad()
            states[idx] = x
        return hook

    handles = [layer.register_forward_pre_hook(grab(i)) for i, layer in enumerate(model.layers)]
    logits = model(tokens, classification_head_name=HEAD)[0]
    torch.nn.functional.cross_entropy(logits, targets, reduction="sum").backward()
    for h in handles:
        h.remove()
    g, hs = states[score_layer].grad, states[score_layer].detach()
    return torch.stack([(g * (hs - states[k].detach())).sum(-1).abs() for k in reduce_layers], -1)


def test_scores_equal_the_gradient_formula():
    d = tiny_dictionary()
    torch.manual_seed(0)
    model = build("prunable_roberta", d, encoder_layers=4).eval()
    tokens = random_batch(d, [15, 9, 12], seed=3)
    targets = torch.tensor([0, 2, 1])
    scores = compute_scores(model, tokens, targets, [1, 2], 3, HEAD, regression=False)
    ref = _reference_scores(model, tokens, targets, [1, 2], 3)
    real = tokens.ne(d.pad())
    assert scores.shape == (3, 15, 2)
    assert torch.allclose(scores[real], ref[real], atol=1e-6)
    assert (scores[~real] == 0).all() and (scores[real] > 0).any()
    with pytest.raises(ValueError, match="score layer"):
        compute_scores(model, tokens, targets, [1, 2], 2, HEAD, regression=False)


def test_score_table_is_keyed_by_sample_id(tmp_path):
    d = tiny_dictionary()
    tokens = random_batch(d, [6, 4, 5], seed=1)
    scores = torch.rand(3, 6, 2).masked_fill(tokens.eq(d.pad()).unsqueeze(-1), 0)
    table = ScoreTable([1, 2], 3, "train")
    ids = torch.tensor([7, 2, 5])
    table.add(ids, scores, tokens.ne(d.pad()).sum(1))
    table.save(str(tmp_path / "s.pt"))
    loaded = ScoreTable.load(str(tmp_path / "s.pt"))
    assert loaded.reduce_layers == [1, 2] and loaded.score_layer == 3
    # another batch order: rows follow the ids, not the order the scores were written in
    order = torch.tensor([2, 0, 1])
    got = loaded.lookup(ids[order], tokens[order], d.pad())
    assert torch.allclose(got, scores[order].half().float())
    with pytest.raises(KeyError, match="no example id 3"):
        loaded.lookup(torch.tensor([3]), tokens[:1], d.pad())
    with pytest.raises(ValueError, match="other data"):
        loaded.lookup(torch.tensor([2]), tokens[:1], d.pad())  # id 2 has 4 tokens, this row 6
