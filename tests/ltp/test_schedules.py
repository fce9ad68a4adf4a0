"""Per-layer thresholds, top-k keep rates and token scores equal values computed by hand."""
import pytest
import torch

from tests.common.prunable_factory import build, random_batch, tiny_dictionary
from user_dir.ltp import scoring


def test_thresholds_per_layer_follow_l_over_n_plus_delta():
    d = tiny_dictionary()
    model = build("ltp_roberta", d, encoder_layers=6, final_token_threshold=0.012)
    enc = model.ltp_encoder
    # 0-based l over N = 6, as the original code did (not the README's 3/6/9/12 of 12 layers)
    assert torch.allclose(enc.thresholds(), torch.tensor([0.0, 0.002, 0.004, 0.006, 0.008, 0.010]))
    with torch.no_grad():
        enc.ltp_threshold_delta.copy_(torch.tensor([0.5, 0.001, -0.001, 0.0, 0.002, -0.003]))
    assert torch.allclose(enc.thresholds(), torch.tensor([0.5, 0.003, 0.003, 0.006, 0.010, 0.007]))
    assert [enc.prunes_at(i) for i in range(6)] == [False] + [True] * 5  # layer 0 never prunes


def test_scores_are_the_mean_received_attention_of_live_queries():
    # one example, 2 heads, 4 positions, the last one padding (its row and column carry no weight)
    a0 = torch.tensor([[0.5, 0.2, 0.3, 0.0],
                       [0.1, 0.6, 0.3, 0.0],
                       [0.2, 0.2, 0.6, 0.0],
                       [0.9, 0.05, 0.05, 0.0]])  # padding query row: must not vote
    a1 = torch.tensor([[0.4, 0.4, 0.2, 0.0],
                       [0.3, 0.3, 0.4, 0.0],
                       [0.1, 0.8, 0.1, 0.0],
                       [0.0, 1.0, 0.0, 0.0]])
    probs = torch.stack([a0, a1])[None]
    pad = torch.tensor([[False, False, False, True]])
    # column sums over the 3 live rows: head 0 -> 0.8, 1.0, 1.2; head 1 -> 0.8, 1.5, 0.7
    received = scoring.received_attention(probs, pad)
    assert torch.allclose(received, torch.tensor([[1.6, 2.5, 1.9, 0.0]]))
    # fixed norm L = 128 and length norm L = n0 = 3
    assert torch.allclose(scoring.threshold_scores(probs, pad, 128), received / (2 * 128))
    assert torch.allclose(scoring.threshold_scores(probs, pad, torch.tensor([3])), received / 6)
    # hard decision: received >= max(1e-5, theta) * H * L; here L = 3, so scores 0.2667, 0.4167, 0.3167
    cut = scoring.received_cut(0.35, 2, 3)
    assert cut == pytest.approx(2.1)
    assert scoring.keep_received(received, cut).tolist() == [[True, True, False, False]]  # <s> kept anyway
    # a negative threshold is floored at 1e-5: every live token stays, padding (received 0) never does
    assert scoring.keep_received(received, scoring.received_cut(-1.0, 2, 3)).tolist() == [[True, True, True, False]]
    # L per example (length norm): cut = theta * H * n0
    n0 = torch.tensor([[3.0], [10.0]])
    two = torch.cat([received, received])
    assert scoring.keep_received(two, scoring.received_cut(0.1, 2, n0)).tolist() == \
        [[True, True, True, False], [True, True, False, False]]


def _rate(r, i, n):
    return min(1.0, max(0.01, 1 + (r - 1) * (i - 2) / (n - 3)))


@pytest.mark.parametrize("rate, n, expected", [
    (0.5, 6, [1, 1, 1, 5 / 6, 4 / 6, 0.5]),
    (-1.0, 6, [1, 1, 1, 1 / 3, 0.01, 0.01]),  # negative rates fall faster and clamp at 0.01
    (0.2, 12, [1, 1, 1] + [1 - 0.8 * k / 9 for k in range(1, 10)]),
    (1.0, 4, [1, 1, 1, 1]),
])
def test_topk_keep_rates_per_layer(rate, n, expected):
    assert scoring.topk_keep_rates(rate, n) == pytest.approx(expected)


def test_topk_keeps_round_n0_times_rate_tokens_in_every_layer():
    d = tiny_dictionary()
    lengths = [21, 8, 14, 33, 5]
    model = build("ltp_roberta", d, encoder_layers=6, max_positions=64, prune_mode="topk",
                  token_keep_rate=0.25).eval()
    tokens = random_batch(d, lengths, seed=2)
    with torch.no_grad():
        model(tokens)
    stats = model.ltp_encoder.last_stats
    for i, kept in enumerate(stats.n_out):
        hand = [max(1, round(n * _rate(0.25, i, 6))) for n in lengths]
        assert kept.tolist() == hand, i
    # tokens entering a layer are those kept by the previous one
    assert [n.tolist() for n in stats.n_in[1:]] == [n.tolist() for n in stats.n_out[:-1]]


def test_topk_keeps_the_best_scored_tokens():
    scores = torch.tensor([[0.1, 0.9, 0.3, 0.8, 0.2], [0.0, 0.5, 0.7, 0.1, 0.0]])
    pad = torch.tensor([[False] * 5, [False, False, False, True, True]])
    keep = scoring.keep_top_k(scores.clone(), pad, torch.tensor([3, 2]))
    assert keep.tolist() == [[True, True, False, True, False], [True, False, True, False, False]]
    keep = scoring.keep_top_k(scores[:1].clone(), None, torch.tensor([2]))  # no padding at all
    assert keep.tolist() == [[True, True, False, False, False]]


def test_soft_mask_is_a_sigmoid_of_the_margin_with_position_0_fixed():
    scores = torch.tensor([[0.001, 0.012, 0.008]])
    theta = torch.tensor(0.010, requires_grad=True)
    mask = scoring.soft_mask(scores, theta, 1e-3)
    hand = torch.sigmoid(torch.tensor([2.0, -2.0]))
    assert mask[0, 0] == 1.0 and torch.allclose(mask[0, 1:], hand)
