"""ONNX exports of every sentence-model kind equal fairseq's eval forward (onnxruntime, fp32, 1e-4).

Each model is exported once (traced on a batch of two rows of length 16/14) and run on batches of
other sizes and lengths, padding included, so nothing of the traced example is frozen in the graph.
"""
import numpy as np
import pytest
import torch

from tests.common.prunable_factory import random_batch
from tests.export.helpers import BATCHES, HEAD, max_diff, session, spread_weights, tiny
from user_dir.common.token_gather import gather_tokens
from user_dir.export.graph_ops import descending_rank, gather_kept
from user_dir.export.sentence_graph import export_sentence

TOL = 1e-4


def _export(model, d, tmp_path, name="model"):
    path = tmp_path / f"{name}.onnx"
    export_sentence(model, HEAD, d, str(path))
    return session(path)


def _kept_counts(model, d, lengths, seed=0):
    """Tokens each example keeps after every LTP layer (fairseq's own record)."""
    with torch.no_grad():
        model(random_batch(d, lengths, seed=seed), classification_head_name=HEAD)
    return [n.tolist() for n in model.encoder.sentence_encoder.last_stats.n_out]


def test_stock_roberta_through_its_prunable_twin(tmp_path):
    from tests.common.prunable_factory import build

    d, stock = tiny("roberta")
    twin = build("prunable_roberta", d).eval()
    twin.load_state_dict(stock.state_dict())
    assert max_diff(stock, _export(twin, d, tmp_path), d) < TOL


def test_kprune_layers_with_zero_heads_and_zero_ffn(tmp_path):
    d, model = tiny("prunable_roberta")
    # what Kprune leaves: uneven layers, one without attention, one without FFN
    model.prune_structure([torch.tensor([], dtype=torch.long), torch.tensor([0, 3]), torch.tensor([1, 2, 3])],
                          [torch.arange(48), torch.tensor([], dtype=torch.long), torch.tensor([5, 7, 40])])
    assert [l.num_heads for l in model.layers] == [0, 2, 3] and model.layers[1].ffn_dim == 0
    assert max_diff(model, _export(model, d, tmp_path), d) < TOL


def _ltp(**overrides):
    d, model = tiny("ltp_roberta", final_token_threshold=0.0, ltp_score_length=16, **overrides)
    # thresholds in the middle of the score distribution: every example keeps its own number of tokens
    model.encoder.sentence_encoder.ltp_threshold_delta.data = torch.tensor([0.0, 0.06, 0.08])
    return d, model


@pytest.mark.parametrize("physical", [True, False], ids=["gathered", "masked"])
def test_ltp_ragged_keep_counts(tmp_path, physical):
    d, model = _ltp(ltp_physical_removal=physical)
    kept = _kept_counts(model, d, BATCHES[0])
    assert len(set(kept[1])) > 1 and len(set(kept[2])) > 1, kept  # ragged within one batch
    assert kept[2] != BATCHES[0]  # and something was pruned
    assert max_diff(model, _export(model, d, tmp_path), d) < TOL


def test_ltp_length_normalised_scores(tmp_path):
    d, model = tiny("ltp_roberta", final_token_threshold=0.0, ltp_score_norm="length")
    model.encoder.sentence_encoder.ltp_threshold_delta.data = torch.tensor([0.0, 0.06, 0.09])
    assert max_diff(model, _export(model, d, tmp_path), d) < TOL


def test_ltp_topk(tmp_path):
    d, model = tiny("ltp_roberta", encoder_layers=4, prune_mode="topk", token_keep_rate=0.3)
    assert max_diff(model, _export(model, d, tmp_path), d) < TOL


@pytest.mark.parametrize("select", ["policy", "policy_topk", "attention_topk"])
def test_trbert_selection_modes(tmp_path, select):
    from tests.trbert.helpers import tiny_trbert
    from tests.common.prunable_factory import tiny_dictionary

    d = tiny_dictionary()
    ratios = {} if select == "policy" else {"trbert_keep_ratios": "0.6,0.3"}
    model = spread_weights(tiny_trbert(d, trbert_select=select, **ratios)).eval()
    with torch.no_grad():
        tokens = random_batch(d, BATCHES[0])
        control = model(tokens, classification_head_name=HEAD)[1]["trbert"]
    kept = [p.kept.tolist() for p in control.points]
    assert any(len(set(k)) > 1 for k in kept), kept
    assert max_diff(model, _export(model, d, tmp_path), d) < TOL


def test_kprune_then_ltp(tmp_path):
    d, model = _ltp(encoder_layer_heads="2,0,3", encoder_layer_ffn_dims="20,31,0")
    kept = _kept_counts(model, d, BATCHES[3])
    assert len(set(kept[2])) > 1, kept
    assert max_diff(model, _export(model, d, tmp_path), d) < TOL


def test_gather_kept_equals_the_encoders_gather():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 9, 5, generator=g)
    padding = torch.arange(9)[None, :] >= torch.tensor([9, 6, 3, 7])[:, None]
    keep = torch.rand(4, 9, generator=g) < 0.5
    keep[:, 0] = True
    ours, ours_pad = gather_kept(x, padding, keep)
    ref = gather_tokens(x, padding, keep)
    assert torch.equal(ours_pad, ref.padding_mask) and torch.equal(ours, ref.x)


def test_descending_rank_breaks_ties_by_position():
    scores = torch.tensor([[0.5, 0.9, 0.5, float("-inf"), 0.9]])
    assert descending_rank(scores).tolist() == [[2, 0, 3, 4, 1]]


def test_traced_shapes_stay_dynamic(tmp_path):
    """A batch much longer and larger than the traced one, and a batch of one."""
    d, model = _ltp()
    sess = _export(model, d, tmp_path)
    for lengths in ([60] * 9 + [2], [3]):
        tokens = random_batch(d, lengths, seed=3)
        with torch.no_grad():
            ref = model(tokens, classification_head_name=HEAD)[0].numpy()
        assert np.abs(sess.run(None, {"src_tokens": tokens.numpy()})[0] - ref).max() < TOL


def test_ranking_ties_in_onnxruntime_follow_position(tmp_path):
    """ONNX TopK breaks ties by the lower index: the order of the encoders' stable sort."""
    from user_dir.export.onnx_export import export_graph

    class Rank(torch.nn.Module):
        def forward(self, scores):
            return descending_rank(scores)

    path = tmp_path / "rank.onnx"
    export_graph(Rank(), (torch.rand(2, 5),), str(path), ["scores"], ["rank"], {"scores": {0: "b", 1: "t"}})
    scores = np.array([[0.5, 0.9, 0.5, -np.inf, 0.9, 0.5]], dtype=np.float32)
    assert session(path).run(None, {"scores": scores})[0].tolist() == [[2, 0, 3, 5, 1, 4]]
